"""The sensitive-word page (admins only, one corp's list each) and the gate on welcome scripts."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from scrm.acquisition import services as acquisition
from scrm.acquisition.models import WelcomeScript
from scrm.compliance import services
from scrm.compliance.models import CorpWord, GatePolicy
from tests.conftest import World, client_for

pytestmark = pytest.mark.django_db

WORDS = reverse("compliance:words")


def test_admin_sees_built_in_categories_and_the_policy(alice_client: Client) -> None:
    response = alice_client.get(WORDS)
    assert response.status_code == 200
    body = response.content.decode()
    for key in ("marketing", "gambling", "fraud", "finance", "adult", "absolute"):
        assert f'data-category="{key}"' in body
    assert "诚心招代理" in body and "一键代发" in body
    assert 'value="block" required id="id_action_0" checked' in body
    assert 'data-testid="gate-corp-words-empty"' in body


def test_admin_adds_and_deletes_a_word(alice_client: Client, world: World) -> None:
    response = alice_client.post(reverse("compliance:word_add"), {"word": "加*微信"})
    assert response.status_code == 302 and response["Location"] == WORDS
    row = CorpWord.objects.get(corp=world.corp_a)
    assert (row.word, row.is_pattern, row.added_by) == ("加*微信", True, world.alice)
    page = alice_client.get(WORDS).content.decode()
    assert 'data-word="加*微信"' in page and "alice" in page
    response = alice_client.post(reverse("compliance:word_delete", kwargs={"word_pk": row.pk}))
    assert response.status_code == 302
    assert not CorpWord.objects.filter(corp=world.corp_a).exists()


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("**", "A pattern must begin and end with a word"),
        ("a*b*c*d*e", "at most 3 *"),
        ("赌博", "already on the built-in list"),
        ("", "This field is required"),
    ],
)
def test_bad_words_are_refused_on_the_page(
    alice_client: Client, world: World, word: str, message: str
) -> None:
    response = alice_client.post(reverse("compliance:word_add"), {"word": word})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not CorpWord.objects.filter(corp=world.corp_a).exists()


def test_admin_sets_the_policy(alice_client: Client, world: World) -> None:
    response = alice_client.post(reverse("compliance:policy"), {"action": "approval"})
    assert response.status_code == 302
    assert GatePolicy.objects.get(corp=world.corp_a).action == "approval"
    assert alice_client.post(reverse("compliance:policy"), {"action": "nothing"}).status_code == 400
    assert GatePolicy.objects.get(corp=world.corp_a).action == "approval"


def test_try_a_text_marks_words_and_escapes_html(alice_client: Client, world: World) -> None:
    services.corp_word_add(corp=world.corp_a, word="秒杀", user=world.alice)
    text = "<img src=x onerror=alert(1)> 限时秒 杀，一键代发"
    # htmx: the fragment alone
    fragment = alice_client.post(reverse("compliance:try"), {"text": text}, HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200
    html = fragment.content.decode()
    assert "<html" not in html and 'data-action="block"' in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "<img" not in html
    assert '<mark class="sensitive" title="Sensitive: 秒杀">秒 杀</mark>' in html
    assert '<mark class="sensitive" title="Sensitive: 一键代发">一键代发</mark>' in html
    # A plain form post: the whole page with the result
    page = alice_client.post(reverse("compliance:try"), {"text": text})
    assert page.status_code == 200 and "<html" in page.content.decode()
    assert '<mark class="sensitive"' in page.content.decode()
    clean = alice_client.post(reverse("compliance:try"), {"text": "周末见"}, HTTP_HX_REQUEST="true")
    assert 'data-action="ok"' in clean.content.decode() and "<mark" not in clean.content.decode()
    assert alice_client.post(reverse("compliance:try"), {"text": ""}).status_code == 400


def test_operators_and_viewers_are_refused(world: World) -> None:
    row = services.corp_word_add(corp=world.corp_a, word="秒杀", user=world.alice)
    for user in (world.bob, world.victor):
        client = client_for(user)
        assert client.get(WORDS).status_code == 403
        assert client.post(reverse("compliance:word_add"), {"word": "领红包"}).status_code == 403
        assert client.post(reverse("compliance:word_delete", kwargs={"word_pk": row.pk})).status_code == 403
        assert client.post(reverse("compliance:policy"), {"action": "approval"}).status_code == 403
    assert list(CorpWord.objects.filter(corp=world.corp_a).values_list("word", flat=True)) == ["秒杀"]
    assert not GatePolicy.objects.filter(corp=world.corp_a).exists()


def test_charlie_sees_only_corp_bs_list(charlie_client: Client, world: World) -> None:
    row = services.corp_word_add(corp=world.corp_a, word="甲的秘密词", user=world.alice)
    services.corp_word_add(corp=world.corp_b, word="乙的词", user=world.charlie)
    body = charlie_client.get(WORDS).content.decode()
    assert "乙的词" in body and "甲的秘密词" not in body
    response = charlie_client.post(reverse("compliance:word_delete", kwargs={"word_pk": row.pk}))
    assert response.status_code == 404
    assert CorpWord.objects.filter(pk=row.pk).exists()
    # Corp A's word doesn't stop corp B's text, in the try box either.
    tried = charlie_client.post(reverse("compliance:try"), {"text": "甲的秘密词"}, HTTP_HX_REQUEST="true")
    assert 'data-action="ok"' in tried.content.decode()


def test_a_corp_word_blocks_saving_a_welcome_script(world: World) -> None:
    services.corp_word_add(corp=world.corp_a, word="加*微信", user=world.alice)
    with pytest.raises(ValidationError) as info:
        acquisition.script_save(corp=world.corp_a, script=None, name="欢迎", text="你好，加我个人微信吧")
    assert info.value.code == "sensitive" and "加*微信" in str(info.value)
    assert not WelcomeScript.objects.filter(corp=world.corp_a).exists()
    # The nickname fallback is checked too; corp B doesn't have the word.
    with pytest.raises(ValidationError):
        acquisition.script_save(
            corp=world.corp_a, script=None, name="欢迎", text="你好", nickname_fallback="加微信"
        )
    acquisition.script_save(corp=world.corp_b, script=None, name="欢迎", text="你好，加我个人微信吧")


def test_welcome_script_page_shows_the_refusal(alice_client: Client, world: World) -> None:
    services.corp_word_add(corp=world.corp_a, word="领红包", user=world.alice)
    data = {"name": "欢迎", "text": "欢迎！领 红 包", "nickname_fallback": "", "members": []}
    response = alice_client.post(reverse("acquisition:script_create"), data)
    assert response.status_code == 400 and "领红包" in response.content.decode()
    assert not WelcomeScript.objects.filter(corp=world.corp_a).exists()


def test_approval_policy_an_admin_saving_a_script_approves_it(alice_client: Client, world: World) -> None:
    services.gate_policy_set(corp=world.corp_a, action="approval", user=world.alice)
    # An operator's save (approver=False, the service default) is refused...
    with pytest.raises(ValidationError) as info:
        acquisition.script_save(corp=world.corp_a, script=None, name="欢迎", text="躺赚的机会")
    assert "admin" in str(info.value)
    # ...an admin's goes through, through the page as well.
    data = {"name": "欢迎", "text": "躺赚的机会", "nickname_fallback": "", "members": []}
    response = alice_client.post(reverse("acquisition:script_create"), data)
    assert response.status_code == 302
    assert WelcomeScript.objects.get(corp=world.corp_a).text == "躺赚的机会"
    # Blocking again stops even the admin.
    services.gate_policy_set(corp=world.corp_a, action="block", user=world.alice)
    data["name"] = "欢迎2"
    assert alice_client.post(reverse("acquisition:script_create"), data).status_code == 400
