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

from pipeline.normalize import URL_MARKER, strip_media

#: CJK ideographs (with extensions A and compatibility) and kana: a text holding any is read as is
_CJKISH = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
#: scripts of languages the lexicon has none of: a text written in one is a review the model cannot
#: read (it was a "prank" to it, as every foreign review was), not random letters
OTHER_SCRIPTS = {"ko": "[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]", "ar": "[\u0600-\u06ff\u0750-\u077f]",
                 "th": "[\u0e00-\u0e7f]", "he": "[\u0590-\u05ff]", "hi": "[\u0900-\u097f]", "el": "[\u0370-\u03ff]",
                 "vi": "[ăđơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]"}  # Vietnamese: letters no other Latin language here uses
_OTHER = [(lang, re.compile(rx, re.I)) for lang, rx in OTHER_SCRIPTS.items()]
_LETTER = re.compile(r"[^\W\d_]")
_CYRILLIC = re.compile("[\u0400-\u04ff]")
_WORD = re.compile(r"[^\W\d_]+(?:['’`][^\W\d_]+)*")
#: what separates the pieces kept in order: words, sentence punctuation, emoji
_PIECE = re.compile(r"[^\W\d_]+(?:['’`][^\W\d_]+)*|\d+(?:[.,]\d+)?|[.!?;。！？；\n]+|[,，、:：]+|[\U0001F300-\U0001FAFF\u2600-\u27BF]")
_NUMBER = re.compile(r"\d")
_HAN = re.compile("[\u4e00-\u9fff]")
_STOP_MARKS = set(".!?;。！？；\n")
#: words that negate what follows, per language (the lexicon's own phrases win over them)
NEGATORS = {
    "en": {"not", "no", "never", "don't", "dont", "doesn't", "doesnt", "didn't", "didnt", "isn't", "isnt",
           "wasn't", "wasnt", "won't", "wont", "can't", "cant", "cannot", "aren't", "arent", "without"},
    "ru": {"не", "нет", "ни", "никогда", "без"},
    "es": {"no", "nunca", "ni", "sin"},
    "pt": {"não", "nao", "nunca", "nem", "sem"},
    "fr": {"pas", "jamais", "ne", "n'", "non", "sans"},
    "de": {"nicht", "kein", "keine", "keinen", "nie", "niemals", "ohne"},
    "it": {"non", "mai", "senza"},
    "pl": {"nie", "nigdy", "bez"},
}
#: negators that deny a thing rather than a quality or an act ("no box", "kein Karton", "нет ответа"): 没
_HAVE_NOT = {"no", "kein", "keine", "keinen", "keiner", "keines", "нет", "без", "sin", "sem", "senza", "ohne", "sans", "bez",
             "without"}
#: how a Chinese gloss says it is negated already (没有 before 没)
_NEGATED = ("没有", "不", "没", "无", "未", "别")
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
            words.add(toks[0])  # a phrase's first word too: "Stopped working" alone is English
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


def gloss(text: str) -> tuple[str, str | None]:
    """``(text the model reads, language glossed from or None)`` of one normalised text.

    Every language that knows a word of the text glosses it, and the one that reads most of it
    wins — the words its lexicon glosses plus its function words — then the most function words,
    then vocabulary words: Spanish and Portuguese share "de", "no", "que", and the count of such
    words alone took "Parou de funcionar depois de 5 dias" for Spanish."""
    if not text:
        return text, None
    bare = strip_media(text, " ")  # "…arrived broken [图片]": the export's marker is no Chinese text
    if _CJKISH.search(bare):
        return text, None
    text = bare
    letters = len(_LETTER.findall(text, 0, 400))
    for lang, rx in _OTHER:  # a script the lexicon does not read, most of the letters: a review, unread
        n = len(rx.findall(text, 0, 400))
        if n >= 2 and (lang == "vi" or 2 * n >= letters):  # (not the µ or Ω of "5µm" among English words)
            return "", lang
    pieces = _PIECE.findall(text)
    norm = [_norm_word(p) if _WORD.fullmatch(p) else None for p in pieces]
    words = [w for w in norm if w is not None]
    if not words:
        return text, None
    found = _candidates(words)
    _, _, stop = _tables()
    best = None
    for key, lang in found:
        glossed, covered = _gloss_in(lang, pieces, norm)
        function = sum(w in stop.get(lang, ()) for w in words)
        if not covered and function < 2:  # one "the" among random letters is no English sentence
            continue
        rank = (covered + function, key)
        if best is None or rank > best[0]:
            best = (rank, glossed, lang)
    if best is None:
        if len(_CYRILLIC.findall(text, 0, 400)) * 2 >= max(letters, 2):  # Cyrillic the lexicon cannot read
            return "", "ru"
        return text, None
    return best[1], best[2]


#: cues that name a party or a channel, not a complaint ("not the seller", "no courier")
_MENTIONS = {"sv_party", "lg_delivery"}


@lru_cache(maxsize=1)
def _complaint_cues() -> frozenset[str]:
    """The cues of :mod:`pipeline.cues` that name a complaint (not praise, a party or a channel)."""
    from pipeline.cues import CUES

    return frozenset(c.name for c in CUES if c.cause and not c.name.startswith("nb_")) - _MENTIONS


def _negated(zh: str, how) -> str:
    """A gloss under a negator. What happened (到了) is 没到; a gloss already negated loses its
    negation ("not broken-free" is rare, "not unhappy" is happy); a complaint the guide's cues name
    (骗子, 损坏, 问题 …) is its absence — 没有问题 —: "not a scam", "never had a problem", "llegó sin
    daños" were complaints of it; anything else, praise included, takes 不 (没 for "no"/"without")."""
    from pipeline.cues import match_cues

    if zh.endswith("了") and len(zh) > 1:
        return "没" + zh[:-1]
    for neg in _NEGATED:
        if zh.startswith(neg) and len(zh) > len(neg):
            return zh[len(neg):]
    if "问题" in zh or "毛病" in zh:  # "never had a problem", "no issues"
        return "没问题"
    found = match_cues(zh)
    if found.keys() & _complaint_cues():
        return "没有问题"
    return ("没有" if how == "have" and "nb_praise" not in found else "不") + zh


def _gloss_in(lang: str, pieces: list[str], norm: list[str | None]) -> tuple[str, int]:
    """The gloss of the pieces in ``lang`` (its phrases, then English's) and the words it read."""
    phrases, _, stop = _tables()
    function = stop.get(lang, set()) | (stop.get("en", set()) if lang != "en" else set())
    tables = [phrases.get(lang, {})] + ([phrases.get("en", {})] if lang != "en" else [])
    negators = NEGATORS.get(lang, set()) | (NEGATORS["en"] if lang != "en" else set())
    out: list[str] = []
    negate = False
    i = covered = reach = 0
    while i < len(pieces):
        w = norm[i]
        if w is None or pieces[i] == URL_MARKER:  # a number, punctuation, emoji or a link
            p = pieces[i]
            if _NUMBER.match(p) or p == URL_MARKER:  # kept: "45 days" → 45天; a link is a steering cue
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
            if negate:
                zh = _negated(zh, negate)
            out.append(zh)
            covered += n
            negate = False
            i += n
            continue
        if w in negators:
            negate = "have" if w in _HAVE_NOT else True
            reach = 2
        elif negate and w not in function:  # a negation reaches the next gloss over two other words at most
            reach -= 1
            if reach < 0:
                negate = False
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
