from __future__ import annotations

import pytest
from django.db import connection
from django.test import override_settings

from scrm.core.crypto import DecryptionError, decrypt_str, encrypt_str, generate_key, key_id_of, parse_keyring
from scrm.tenancy.models import Corp
from tests.conftest import World


def _raw_columns(corp: Corp) -> tuple[str, str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT secret, callback_token, encoding_aes_key FROM tenancy_corp WHERE id = %s", [corp.pk]
        )
        row = cursor.fetchone()
    assert row is not None
    return row


@pytest.mark.django_db
def test_round_trip_and_raw_column_holds_only_ciphertext(world: World) -> None:
    corp = Corp.objects.get(pk=world.corp_a.pk)
    assert corp.secret == "secret-of-wwalpha000000001-PLAINTEXT"
    assert corp.encoding_aes_key == "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
    for raw, plain in zip(
        _raw_columns(corp), (corp.secret, corp.callback_token, corp.encoding_aes_key), strict=True
    ):
        assert raw.startswith("gcm1$")
        assert plain not in raw
        assert "PLAINTEXT" not in raw


@pytest.mark.django_db
def test_same_plaintext_encrypts_differently_each_time(world: World) -> None:
    a, b = _raw_columns(world.corp_a)[2], _raw_columns(world.corp_b)[2]
    assert world.corp_a.encoding_aes_key == world.corp_b.encoding_aes_key
    assert a != b  # random nonce


def test_tampered_or_moved_ciphertext_is_refused() -> None:
    stored = encrypt_str("秘密", aad=b"tenancy.corp.secret")
    assert decrypt_str(stored, aad=b"tenancy.corp.secret") == "秘密"
    with pytest.raises(DecryptionError):
        decrypt_str(stored, aad=b"tenancy.corp.callback_token")  # copied to another column
    prefix, kid, blob = stored.split("$")
    flipped = blob[:-4] + ("AAAA" if blob[-4:] != "AAAA" else "BBBB")
    with pytest.raises(DecryptionError):
        decrypt_str(f"{prefix}${kid}${flipped}", aad=b"tenancy.corp.secret")


@pytest.mark.django_db
def test_key_rotation_keeps_old_rows_readable_and_rewrites_them(world: World) -> None:
    from django.conf import settings
    from django.core.management import call_command

    old = settings.FIELD_ENCRYPTION_KEY
    new = generate_key("k2")
    with override_settings(FIELD_ENCRYPTION_KEY=f"{new},{old}"):
        corp = Corp.objects.get(pk=world.corp_a.pk)
        assert corp.secret == "secret-of-wwalpha000000001-PLAINTEXT"  # old key still decrypts
        call_command("rotate_field_key")
        assert all(key_id_of(raw) == "k2" for raw in _raw_columns(corp))
        assert Corp.objects.get(pk=corp.pk).secret == "secret-of-wwalpha000000001-PLAINTEXT"
    with override_settings(FIELD_ENCRYPTION_KEY=new):
        assert Corp.objects.get(pk=world.corp_b.pk).secret.startswith("secret-of-")


def test_keyring_validation() -> None:
    from django.core.exceptions import ImproperlyConfigured

    assert parse_keyring(generate_key("a1") + "," + generate_key("b2")).active_kid == "a1"
    for bad in ("", "nokey", "k1:not-base64!!", "k1:" + "QUJD", "k-1:" + generate_key().split(":")[1]):
        with pytest.raises(ImproperlyConfigured):
            parse_keyring(bad)
