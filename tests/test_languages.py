"""Sentence groups in every language the Multilingual model speaks (no model needed)."""

import pytest

from chatterbox_cli.models import get
from chatterbox_cli.text.languages import LANGUAGES, language, spoken_length
from chatterbox_cli.text.segment import MAX_GROUP_CHARS, sentences, split_groups

SAMPLES = {
    "ar": ("ذهبت إلى السوق صباحا. اشتريت بعض الخبز والحليب! هل تريد أن تأتي معي؟", 3),
    "da": ("Hr. Jensen bor i København. Han arbejder på et hospital! Kommer du i morgen?", 3),
    "de": (
        "Dr. Müller kam am 3. Oktober an. Er war sehr müde! Wollen wir z. B. ins Kino gehen?",
        3,
    ),
    "el": ("Ο κ. Παπαδόπουλος ήρθε χθες. Ήταν πολύ κουρασμένος! Θα έρθεις αύριο;", 3),
    "en": ("Dr. Smith arrived at 5 p.m. on Friday. He was tired! Will you come tomorrow?", 3),
    "es": ("El Sr. García llegó ayer. Estaba muy cansado! ¿Vienes mañana?", 3),
    "fi": ("Tri. Virtanen saapui eilen. Hän oli hyvin väsynyt! Tuletko huomenna?", 3),
    "fr": ("M. Dupont est arrivé hier. Il était très fatigué! Viendras-tu demain?", 3),
    "he": ("הלכתי לשוק בבוקר. קניתי לחם וחלב! אתה רוצה לבוא איתי?", 3),
    "hi": ("मैं कल बाज़ार गया था। मैंने रोटी और दूध खरीदा! क्या तुम मेरे साथ चलोगे?", 3),
    "it": ("Il sig. Rossi è arrivato ieri. Era molto stanco! Vieni domani?", 3),
    "ja": ("昨日、田中さんが来ました。とても疲れていました！明日も来ますか？", 3),
    "ko": ("어제 김 선생님이 왔어요. 아주 피곤했어요! 내일도 올 거예요?", 3),
    "ms": ("Dr. Ahmad tiba semalam. Dia sangat penat! Adakah anda datang esok?", 3),
    "nl": ("Dhr. Jansen kwam gisteren aan. Hij was erg moe! Kom je morgen?", 3),
    "no": ("Hr. Hansen kom i går. Han var veldig trøtt! Kommer du i morgen?", 3),
    "pl": ("Dr. Kowalski przyjechał wczoraj. Był bardzo zmęczony! Przyjdziesz jutro?", 3),
    "pt": ("O Sr. Silva chegou ontem. Ele estava muito cansado! Você vem amanhã?", 3),
    "ru": ("Проф. Иванов приехал вчера. Он очень устал! Ты придёшь завтра?", 3),
    "sv": ("Dr. Andersson kom i går. Han var mycket trött! Kommer du i morgon?", 3),
    "sw": ("Dkt. Juma alifika jana. Alikuwa amechoka sana! Utakuja kesho?", 3),
    "tr": ("Dr. Yılmaz dün geldi. Çok yorgundu! Yarın gelecek misin?", 3),
    "zh": ("王先生昨天来了。他很累！你明天来吗？", 3),
}
"""Three real sentences per language, most with an abbreviation that must not end one."""


def test_every_multilingual_language_has_a_sample_and_a_profile():
    assert set(SAMPLES) == set(get("multilingual").languages) == set(LANGUAGES)


@pytest.mark.parametrize("code", sorted(SAMPLES))
def test_sentences_in_each_language(code):
    text, count = SAMPLES[code]
    lang = LANGUAGES[code]
    found = sentences(text, lang)
    assert len(found) == count, found
    sep = " " if lang.spaced else ""
    assert sep.join(found) == text


@pytest.mark.parametrize("code", sorted(SAMPLES))
def test_groups_keep_every_character_and_the_length_bound(code):
    text = " ".join([SAMPLES[code][0]] * 12) if LANGUAGES[code].spaced else SAMPLES[code][0] * 12
    groups = split_groups(text, lang=LANGUAGES[code])
    assert len(groups) > 1 and all(g.language == code for g in groups)
    assert all(spoken_length(g.text) <= MAX_GROUP_CHARS for g in groups)
    sep = " " if LANGUAGES[code].spaced else ""
    assert sep.join(g.text for g in groups) == text


def test_a_han_character_counts_as_a_syllable_not_a_letter():
    assert spoken_length("你好") == 6 and spoken_length("こんにちは") == 10
    assert spoken_length("안녕") == 6 and spoken_length("hello") == 5
    assert spoken_length("Grüße") == 5


def test_long_unspaced_sentences_are_cut_at_commas_then_between_characters():
    clause = "我们今天去公园散步然后吃饭" * 3
    sentence = "，".join([clause] * 4) + "。"
    groups = split_groups(sentence, lang=LANGUAGES["zh"])
    assert len(groups) > 1 and "".join(g.text for g in groups) == sentence
    assert all(spoken_length(g.text) <= MAX_GROUP_CHARS for g in groups)
    assert groups[0].text.endswith("，")
    wall = "字" * 200  # no punctuation at all
    pieces = split_groups(wall, lang=LANGUAGES["zh"])
    assert "".join(g.text for g in pieces) == wall
    assert [spoken_length(g.text) <= MAX_GROUP_CHARS for g in pieces] == [True] * len(pieces)


def test_streaming_first_group_is_short_in_cjk_too():
    text = "昨日、田中さんが来ました。とても疲れていました！明日も来ますか？" * 4
    groups = split_groups(text, short_first=True, lang=LANGUAGES["ja"])
    assert groups[0].text == "昨日、田中さんが来ました。"


def test_unknown_or_unspoken_languages_are_refused_with_the_list():
    from chatterbox_cli.runtime.errors import BadInput

    with pytest.raises(BadInput, match=r"unknown language 'xx'; use one of: ar \(Arabic\)"):
        language("xx")
    with pytest.raises(BadInput, match="English only"):
        get("turbo").language("de")
    assert get("standard").language(None).code == "en"
    assert get("multilingual").language("DE").code == "de"
