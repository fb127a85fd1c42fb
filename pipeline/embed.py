"""Word vectors learnt from the shops' own reviews: a feature that carries across wording.

The n-gram features know only the words of the labelled reviews. A review of a product category
the labels never saw says the same things in other words (色号, 持妆 … for cosmetics), and the
n-grams see nothing of them. :class:`WordVectors` learns a vector per jieba word with word2vec
(gensim, skip-gram) from the training reviews **and the unlabelled reviews of** ``data/raw``
(:func:`pipeline.data.unlabelled_texts`: ~26k reviews when screened; 36 since every pool was read), so words used in the
same contexts get close vectors; a review's feature is the L2-normalised mean vector of its
words (words the vectors do not know are skipped; a review with none gets zeros).

The vectors are fitted with the model and travel in it: scoring reads no corpus and loads no
other file. Switched on, they cost a second segmentation of each chunk (and of the clauses the
stacker splits) — :func:`pipeline.fast_ngrams.chunk_tokens`, whole chunks at once — and one
sparse × dense product.
Measured by leave-one-domain-out and 5-fold cross-validation: README, "Measured figures".
"""

from __future__ import annotations

from itertools import repeat

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted


class WordVectors(TransformerMixin, BaseEstimator):
    """Mean word2vec vector of each (normalised) review, ``dim`` columns ``emb:0 …``.

    **Off by default** (``dim=0``: no columns, nothing learnt, nothing computed): measured by
    leave-one-domain-out it helps on another platform and on the Mengniu rants but costs accuracy
    on ordinary product categories (README, "Experiments"). ``dim=100`` turns it on
    (``--param model__features__vectors__vec__dim=100``; needs gensim: ``pip install -e '.[vectors]'``).

    ``unlabelled``: also learn from the unlabelled reviews of ``data/raw`` (else only from the
    texts given to ``fit``); ``exclude``: domains whose unlabelled reviews are left out (a held-out
    domain in leave-one-domain-out); ``sg``: skip-gram (1) or CBOW (0); ``workers`` threads
    (gensim's training is only bit-reproducible with one worker; the figures in the README are
    measured with the default two).
    """

    def __init__(self, dim=0, window=5, min_count=2, epochs=10, sg=1, unlabelled=True, exclude=(), seed=1, workers=2):
        self.dim = dim
        self.window = window
        self.min_count = min_count
        self.epochs = epochs
        self.sg = sg
        self.unlabelled = unlabelled
        self.exclude = exclude
        self.seed = seed
        self.workers = workers

    def fit(self, X, y=None):
        from pipeline.segment import segment

        self.n_features_in_ = 1
        if not self.dim:
            self.index_, self.vectors_ = {}, np.zeros((0, 0), dtype=np.float32)
            return self
        try:
            from gensim.models import Word2Vec
        except ImportError:
            raise ImportError("word vectors (dim > 0) need gensim: pip install -e '.[vectors]'") from None
        texts = list(X)
        if self.unlabelled:
            from pipeline.data import unlabelled_texts

            texts += unlabelled_texts(tuple(self.exclude))
        sentences = [segment(t.lower()) for t in texts]
        if not any(len(s) for s in sentences):
            self.index_, self.vectors_ = {}, np.zeros((0, self.dim), dtype=np.float32)
            return self
        w2v = Word2Vec(sentences=sentences, vector_size=self.dim, window=self.window, min_count=self.min_count,
                       workers=self.workers, epochs=self.epochs, sg=self.sg, seed=self.seed)
        self.index_ = {w: i for i, w in enumerate(w2v.wv.index_to_key)}
        self.vectors_ = np.ascontiguousarray(w2v.wv.vectors, dtype=np.float32)
        return self

    def transform(self, X):
        check_is_fitted(self, "vectors_")
        from pipeline.fast_ngrams import chunk_tokens, counts_matrix

        docs = X if isinstance(X, list) else list(X)
        n = len(docs)
        if not n or not len(self.vectors_):
            return sp.csr_matrix((n, self.dim), dtype=np.float32)
        tok_doc, codes, uniq = chunk_tokens(docs)
        ids = np.fromiter(map(self.index_.get, uniq, repeat(-1)), dtype=np.int64, count=len(uniq))[codes]
        hit = ids >= 0
        counts = counts_matrix(tok_doc[hit], ids[hit], (n, len(self.vectors_)), np.float32)
        total = np.asarray(counts @ self.vectors_, dtype=np.float32)
        norm = np.linalg.norm(total, axis=1, keepdims=True)
        np.divide(total, norm, out=total, where=norm > 0)
        return sp.csr_matrix(total)

    def reference(self, docs) -> np.ndarray:
        """The features review by review (the mean of the known words' vectors, normalised):
        the oracle :meth:`transform` must equal (``tests/test_embed.py``)."""
        from pipeline.segment import segment

        out = np.zeros((len(docs), self.dim), dtype=np.float32)
        for i, d in enumerate(docs):
            known = [self.index_[t] for t in segment(d.lower()) if t in self.index_]
            if known:
                v = self.vectors_[known].astype(np.float64).mean(axis=0)
                out[i] = v / np.linalg.norm(v)
        return out

    def get_feature_names_out(self, input_features=None):
        return np.asarray([f"emb:{j}" for j in range(self.dim)], dtype=object)
