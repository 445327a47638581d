"""Safe parsing of untrusted XML (WeCom callback envelopes and the events inside them).

Everything WeCom posts to us is attacker-reachable until the signature is checked, and the decrypted
event is only as trustworthy as the sender: neither may carry a DTD, so entity expansion (billion
laughs), external entities and parameter entities are refused before they can do anything.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element, ParseError

from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import fromstring

__all__ = ["UnsafeXmlError", "parse_untrusted"]


class UnsafeXmlError(ValueError):
    """The XML was refused: not well-formed, or it declares a DTD / entities / external references.

    ``reason`` is a short machine string: ``dtd``, ``entity``, ``external_entity`` or ``syntax``.
    Callers wrap this into their own error type (crypto.XmlError, events.EventParseError).
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def parse_untrusted(data: bytes | str) -> Element:
    """Parse ``data`` into an Element, refusing DTDs, entity declarations and external references."""
    try:
        root: Element = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DTDForbidden as exc:
        raise UnsafeXmlError("XML declares a DTD (DOCTYPE); refused", reason="dtd") from exc
    except EntitiesForbidden as exc:
        raise UnsafeXmlError("XML declares an entity; refused", reason="entity") from exc
    except ExternalReferenceForbidden as exc:
        raise UnsafeXmlError("XML references an external entity; refused", reason="external_entity") from exc
    except ParseError as exc:
        # expat's message carries only a position ("line 1, column 7"), never the document.
        raise UnsafeXmlError(f"XML is not well-formed: {exc}", reason="syntax") from exc
    return root
