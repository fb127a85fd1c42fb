"""The words behind each cause, as text a seller can read and quote.

For every cause that passes, the linear model's per-feature contributions (feature value ×
the cause's weight) are ranked; the strongest text features (jieba words, word bigrams,
character n-grams) are located in the review, overlapping ones merged into spans, and the best
spans quoted — taken from the original text when it contains them (traditional script, full
width), else from the normalised text:

    product_quality「鞋底开胶」; stockout_logistics「等了一个星期」

Buyer-side and malicious causes (5–8) also get the cue phrases of ``causes.md`` that matched
(e.g. ``索要钱财 demands money「返50」``), and a malicious cause says when the text names no detail
of the order. A rating that weighed in says so (``评分2星 rating 2``).
"""

from __future__ import annotations

import re

import numpy as np

from pipeline.cues import BY_NAME, CUES, match_cues
from pipeline.taxonomy import BUYER_SIDE, CAUSE_IDS, MALICIOUS

#: cues naming the order itself (causes 1–4): their absence is a sign of sweeping defamation
COMPLAINT_CUES = frozenset(c.name for c in CUES if c.cause and c.cause not in BUYER_SIDE
                           and c.name not in ("sv_party", "lg_delivery"))
_TOP_FEATURES = 12


def _surface(name: str) -> str | None:
    """The text a feature stands for, or None for non-text features (cues, rating)."""
    if name.startswith("cue:") or name.startswith("rating_"):
        return None
    if name.startswith("#"):
        return name[1:]
    return name.replace(" ", "")


_CLAUSE = re.compile(r"[^，。！？,.!?；;、~…\s]+")
MAX_QUOTE = 12


def _spans(text: str, feats: list[tuple[str, float]], limit: int) -> list[str]:
    """The clauses of ``text`` that carry most of the features' weight, each cut to the
    ``MAX_QUOTE`` characters around its strongest point; the ``limit`` best, in text order.

    Each feature's contribution is spread over the characters it covers (every occurrence), so
    a clause scores by the words that drove the cause, whether they came as words, word pairs or
    character n-grams.
    """
    low = text.lower()
    weight = np.zeros(len(text))
    for surface, w in feats:
        if not surface:
            continue
        at = low.find(surface)
        while at >= 0:
            weight[at : at + len(surface)] += w / len(surface)
            at = low.find(surface, at + 1)
    if not weight.any():
        return []
    clauses = []
    for m in _CLAUSE.finditer(text):
        a, b = m.span()
        score = weight[a:b].sum()
        if score <= 0:
            continue
        if b - a > MAX_QUOTE:  # the window of MAX_QUOTE characters with the most weight
            sums = np.convolve(weight[a:b], np.ones(MAX_QUOTE), mode="valid")
            a = a + int(sums.argmax())
            b = a + MAX_QUOTE
        clauses.append((score, a, b))
    best = sorted(clauses, key=lambda c: -c[0])[:limit]
    return [text[a:b] for _, a, b in sorted(best, key=lambda c: c[1])]


def _in_original(span: str, original: str) -> str:
    """The span as written in the original text when it can be found there."""
    if span in original:
        return span
    try:
        from pipeline.normalize import to_traditional

        trad = to_traditional(span)
        if trad in original:
            return trad
    except Exception:  # no converter: quote the normalised text
        pass
    return span


def cue_evidence(norm: str, causes: set[str], found: dict[str, list[str]] | None = None) -> list[str]:
    """Cue phrases behind buyer-side/malicious causes, and the no-detail sign for 7/8."""
    found = match_cues(norm) if found is None else found
    parts = []
    for name, snippets in found.items():
        cue = BY_NAME[name]
        if cue.cause in causes and cue.cause in BUYER_SIDE:
            quoted = "」「".join(dict.fromkeys(s.strip() for s in snippets))[:60]
            parts.append(f"{cue.label}「{quoted}」")
    if causes & MALICIOUS and not found.keys() & COMPLAINT_CUES:
        parts.append("未提及任何订单细节 no detail of the order")
    return parts


def explain(model, names: np.ndarray, X, rows: list[tuple[int, np.ndarray]], norms: list[str], originals: list[str],
            spans: int = 2) -> list[str]:
    """Evidence text for each ``(row of X, passing cause indices)``."""
    clf = model.named_steps["clf"]
    X = X.tocsr()
    out = []
    for (r, causes), norm, original in zip(rows, norms, originals):
        lo, hi = X.indptr[r], X.indptr[r + 1]
        idx, vals = X.indices[lo:hi], X.data[lo:hi]
        parts: list[str] = []
        notes: set[str] = set()
        wanted = {CAUSE_IDS[j] for j in causes}
        found = match_cues(norm) if wanted & BUYER_SIDE else None
        for j in causes:
            contrib = vals * clf.coef_[j, idx]
            order = np.argsort(-contrib)[:_TOP_FEATURES]
            feats, rating = [], None
            for o in order:
                if contrib[o] <= 0:
                    break
                name = names[idx[o]]
                if name.startswith("rating_") and name != "rating_unknown":
                    rating = name
                s = _surface(name)
                if s is not None:
                    feats.append((s, float(contrib[o])))
            quoted = "".join(f"「{_in_original(s, original)}」" for s in _spans(norm, feats, spans))
            cause = CAUSE_IDS[j]
            if quoted:
                parts.append(f"{cause}{quoted}")
            elif cause not in BUYER_SIDE:
                parts.append(f"{cause}「{norm[:20]}」")
            if rating is not None:
                notes.add(_RATING_NOTE[rating])
        if found is not None:
            parts.extend(cue_evidence(norm, wanted, found))
        parts.extend(sorted(notes))
        out.append("; ".join(dict.fromkeys(parts)))
    return out


_RATING_NOTE = {
    "rating_low": "低星评分 low star rating",
    "rating_mid": "中评星级 middling star rating",
    "rating_high": "高星评分 high star rating",
}
