"""Foreign-language reviews, read through a word-by-word gloss into the Chinese the model knows.

AliExpress and other cross-border shops export reviews in English, Russian, Spanish, Portuguese,
French, German, Italian and Polish. The model reads Chinese: before this step a review with no
Chinese character was, to it, random letters — "The item arrived broken" came out ``prank``.

:func:`gloss_many` takes the normalised texts. A text **with any CJK ideograph, kana or hangul is
left alone** (Chinese reviews never change, whatever English words they hold: "iPhone", "ok").
For the rest, the words (letters, apostrophes inside) are looked up in
:mod:`pipeline.gloss_words`: the language is the one whose function words and vocabulary the text
uses most (:data:`~pipeline.gloss_words.STOPWORDS`, :data:`~pipeline.gloss_words.GLOSS`), at least
one word of it. Its phrases are then matched longest first (``not as described`` before ``not``),
English's after the language's own (buyers mix in "ok", "good"), a negator carries to the next
gloss (``не`` + ``работает``), and the text becomes the glosses in order, with sentence
punctuation kept as Chinese commas and full stops so that clauses stay clauses; unknown words are
dropped. Emoji are kept.

* A text of no known language (random letters, ``asdfgh``) is left alone: that is what a prank
  looks like to the guide, and what the model learnt.
* A text of a known language where no word is in the lexicon glosses to nothing: the Predictor
  then answers ``uncertain`` and says so in the evidence, rather than guessing.

The gloss is for the model and the evidence only; the batch signals (campaigns of near-duplicate
texts) read the text as written, so two different English reviews whose glosses agree are not
a campaign.
"""

from __future__ import annotations

import re
from functools import lru_cache

#: CJK ideographs (with extensions A and compatibility) and kana: a text holding any is read as is
_CJKISH = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
#: scripts of languages the lexicon has none of: a text written in one is a review the model cannot
#: read (it was a "prank" to it, as every foreign review was), not random letters
OTHER_SCRIPTS = {"ko": "[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]", "ar": "[\u0600-\u06ff\u0750-\u077f]",
                 "th": "[\u0e00-\u0e7f]", "he": "[\u0590-\u05ff]", "hi": "[\u0900-\u097f]", "el": "[\u0370-\u03ff]",
                 "vi": "[ăđơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]"}  # Vietnamese: letters no other Latin language here uses
_OTHER = [(lang, re.compile(rx, re.I)) for lang, rx in OTHER_SCRIPTS.items()]
_WORD = re.compile(r"[^\W\d_]+(?:['’`][^\W\d_]+)*")
#: what separates the pieces kept in order: words, sentence punctuation, emoji
_PIECE = re.compile(r"[^\W\d_]+(?:['’`][^\W\d_]+)*|\d+(?:[.,]\d+)?|[.!?;。！？；\n]+|[,，、:：]+|[\U0001F300-\U0001FAFF\u2600-\u27BF]")
_NUMBER = re.compile(r"\d")
_HAN = re.compile("[\u4e00-\u9fff]")
_STOP_MARKS = set(".!?;。！？；\n")
#: longest phrase tried, in words
_MAX_PHRASE = 5
#: words that negate what follows, per language (the lexicon's own phrases win over them)
NEGATORS = {
    "en": {"not", "no", "never", "don't", "dont", "doesn't", "doesnt", "didn't", "didnt", "isn't", "isnt",
           "wasn't", "wasnt", "won't", "wont", "can't", "cant", "cannot", "aren't", "arent"},
    "ru": {"не", "нет", "ни", "никогда"},
    "es": {"no", "nunca", "ni"},
    "pt": {"não", "nao", "nunca", "nem"},
    "fr": {"pas", "jamais", "ne", "n'", "non"},
    "de": {"nicht", "kein", "keine", "keinen", "nie", "niemals"},
    "it": {"non", "mai"},
    "pl": {"nie", "nigdy"},
}
#: negators that deny a thing rather than a quality or an act ("no box", "kein Karton", "нет ответа"): 没
_HAVE_NOT = {"no", "kein", "keine", "keinen", "keiner", "keines", "нет"}
_NEGATED = ("不", "没", "无", "未", "别")
#: the languages' names in the evidence (Chinese, English)
LANGUAGE_NAMES = {"en": ("英语", "English"), "ru": ("俄语", "Russian"), "es": ("西班牙语", "Spanish"),
                  "pt": ("葡萄牙语", "Portuguese"), "fr": ("法语", "French"), "de": ("德语", "German"),
                  "it": ("意大利语", "Italian"), "pl": ("波兰语", "Polish"), "ko": ("韩语", "Korean"),
                  "ar": ("阿拉伯语", "Arabic"), "th": ("泰语", "Thai"), "he": ("希伯来语", "Hebrew"),
                  "hi": ("印地语", "Hindi"), "el": ("希腊语", "Greek"), "vi": ("越南语", "Vietnamese")}


def _norm_word(w: str) -> str:
    return w.lower().replace("’", "'").replace("`", "'").replace("ё", "е")


@lru_cache(maxsize=1)
def _tables():
    """(per-language phrase table keyed by first word, per-language vocabulary for detection)."""
    from pipeline.gloss_words import GLOSS, STOPWORDS

    phrases: dict[str, dict[str, list[tuple[tuple[str, ...], str]]]] = {}
    vocab: dict[str, set[str]] = {}
    for lang, table in GLOSS.items():
        by_first: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        words: set[str] = set(_norm_word(w) for w in STOPWORDS.get(lang, ()))
        for key, zh in table.items():
            toks = tuple(_norm_word(t) for t in _WORD.findall(key))
            if not toks or not zh:
                continue
            by_first.setdefault(toks[0], []).append((toks, zh))
            if len(toks) == 1:
                words.add(toks[0])
        for entries in by_first.values():
            entries.sort(key=lambda e: -len(e[0]))
        phrases[lang] = by_first
        vocab[lang] = words
    stop = {lang: {_norm_word(w) for w in ws} | {_norm_word(w) for w in NEGATORS.get(lang, ())}
            for lang, ws in STOPWORDS.items()}
    return phrases, vocab, stop


def _candidates(words: list[str]) -> list[tuple[tuple[int, int], str]]:
    """``((function words, vocabulary words), language)`` of every language that knows a word here."""
    _, vocab, stop = _tables()
    found = []
    for lang in vocab:
        key = (sum(w in stop.get(lang, ()) for w in words), sum(w in vocab[lang] for w in words))
        if key > (0, 0):
            found.append((key, lang))
    return found


def language(words: list[str]) -> str | None:
    """The language of these (normalised) words by their function and vocabulary words alone (the
    most function words, then the most vocabulary words); None when no language knows any."""
    found = _candidates(words)
    return max(found)[1] if found else None


def gloss(text: str) -> tuple[str, str | None]:
    """``(text the model reads, language glossed from or None)`` of one normalised text.

    Every language that knows a word of the text glosses it, and the one that reads most of it
    wins — the words its lexicon glosses plus its function words — then the most function words,
    then vocabulary words: Spanish and Portuguese share "de", "no", "que", and the count of such
    words alone took "Parou de funcionar depois de 5 dias" for Spanish."""
    if not text or _CJKISH.search(text):
        return text, None
    for lang, rx in _OTHER:  # two letters of a script the lexicon does not read: a review, unread
        if len(rx.findall(text, 0, 400)) >= 2:
            return "", lang
    pieces = _PIECE.findall(text)
    norm = [_norm_word(p) if _WORD.fullmatch(p) else None for p in pieces]
    words = [w for w in norm if w is not None]
    if not words:
        return text, None
    found = _candidates(words)
    if not found:
        return text, None
    _, _, stop = _tables()
    best = None
    for key, lang in found:
        glossed, covered = _gloss_in(lang, pieces, norm)
        read = covered + sum(w in stop.get(lang, ()) for w in words)
        rank = (read, key)
        if best is None or rank > best[0]:
            best = (rank, glossed, lang)
    return best[1], best[2]


def _gloss_in(lang: str, pieces: list[str], norm: list[str | None]) -> tuple[str, int]:
    """The gloss of the pieces in ``lang`` (its phrases, then English's) and the words it read."""
    phrases, _, _ = _tables()
    tables = [phrases.get(lang, {})] + ([phrases.get("en", {})] if lang != "en" else [])
    negators = NEGATORS.get(lang, set()) | (NEGATORS["en"] if lang != "en" else set())
    out: list[str] = []
    negate = False
    i = covered = 0
    while i < len(pieces):
        w = norm[i]
        if w is None:  # a number, punctuation or emoji
            p = pieces[i]
            if _NUMBER.match(p):  # kept: "45 days" → 45天, "$20" → 20…
                out.append(p)
                i += 1
                continue
            if p[0] in _STOP_MARKS or p[-1] in _STOP_MARKS:
                mark = "。"
            elif p[0] in ",，、:：":
                mark = "，"
            else:
                mark = p
            if out and out[-1] not in ("，", "。") or mark not in ("，", "。"):
                out.append(mark)
            negate = False
            i += 1
            continue
        hit = None
        for table in tables:
            for toks, zh in table.get(w, ()):
                n = len(toks)
                if tuple(norm[i:i + n]) == toks:
                    hit = (n, zh)
                    break
            if hit:
                break
        if hit:
            n, zh = hit
            if negate and not zh.startswith(_NEGATED):  # 没 for what happened (到了 → 没到) or is missing, else 不
                if zh.endswith("了") and len(zh) > 1:
                    zh = "没" + zh[:-1]
                else:
                    zh = ("没" if negate == "have" else "不") + zh
            out.append(zh)
            covered += n
            negate = False
            i += n
            continue
        if w in negators:
            negate = "have" if w in _HAVE_NOT else True
            covered += 1
        i += 1
    if not covered or not any(_HAN.match(piece) for piece in out):  # numbers and marks alone say nothing
        return "", covered
    return "".join(out).strip("，。"), covered


def gloss_many(texts: list[str]) -> tuple[list[str], list[str | None]]:
    """:func:`gloss` of every text: the texts the model reads and the language of each (None: as written)."""
    out, langs = [], []
    for t in texts:
        if t and not _CJKISH.search(t) and _WORD.search(t):  # (hangul, Arabic … are \w letters too)
            g, lang = gloss(t)
        else:
            g, lang = t, None
        out.append(g)
        langs.append(lang)
    return out, langs
