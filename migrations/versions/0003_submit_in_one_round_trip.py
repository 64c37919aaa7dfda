"""PostgreSQL: case submits in one statement (batched), change-log positions drawn per transaction

Revision ID: 0003
Revises: 0002

Both are about the submit's cost (bench/submit_bench.py), not its meaning:

* `hashguard_create_cases(...)` does what store/cases.create_case does on SQLite -- insert the
  cases, upsert their hashes, link them, share the ones new to each pathway and append their
  `add` entries -- for a whole batch of submits in one call. Called in autocommit, a batch is
  one round trip and one COMMIT (one WAL flush, one turn of the change-log lock) instead of six
  round trips per submit. Measured before batching: with the append lock held through each
  commit's WAL flush, single-submit transactions queued on that lock (bench/submit_bench.py,
  "Lock:advisory"); store/submit_batcher.py explains the batching. Each statement inside takes
  its own snapshot (READ COMMITTED, volatile function), so the "decide under the hash row
  locks" reasoning of store/pg_writes.py holds as is.

* change_log_assign_position(): the deferred trigger still fires once per new change-log row, but
  the first firing of a transaction now positions all of that transaction's rows with one UPDATE
  (in id order, under the same advisory lock), and the others see their row positioned and
  return. Order and gap-freeness are unchanged (store/changelog.py); a submit of 10 hashes does
  one UPDATE at COMMIT instead of ten.
"""
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


_ASSIGN_POSITIONS_PER_TRANSACTION = """
CREATE OR REPLACE FUNCTION change_log_assign_position() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Already positioned by the first firing of this transaction? (coalesce: see below.)
    PERFORM 1 FROM change_log WHERE id = NEW.id AND coalesce(seq, 0) = 0;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock(1212629836);  -- 0x4847434C, "HGCL"
    -- Rows with seq NULL that this statement can see are this transaction's own: other writers'
    -- rows are invisible until they commit, and they commit positioned. Deferred triggers fire
    -- in insertion order, so NEW.id is this transaction's lowest id; a lower one, if any, would
    -- be positioned by its own firing, still under this lock. `coalesce(seq, 0) = 0` rather
    -- than `seq IS NULL`: the latter lets the planner walk the unique index on seq, whose NULL
    -- end holds an entry for every row version ever positioned until VACUUM (measured: a scan
    -- growing with the table, under the lock); this way it scans the primary key from NEW.id,
    -- i.e. only rows inserted since this transaction's first.
    UPDATE change_log c
       SET seq = p.seq,
           logged_at = floor(extract(epoch FROM clock_timestamp()))::bigint
      FROM (SELECT mine.id, nextval('change_log_position') AS seq
              FROM (SELECT id FROM change_log
                     WHERE id >= NEW.id AND coalesce(seq, 0) = 0 ORDER BY id) AS mine) AS p
     WHERE c.id = p.id;
    -- Wakes long-polling partners in every API process (partners/wakeup.py). Delivered at
    -- COMMIT; identical payloads in one transaction collapse into one notification.
    PERFORM pg_notify('hashguard_change_log', '');
    RETURN NULL;
END $$;
"""

_ASSIGN_POSITIONS_PER_ROW = """
CREATE OR REPLACE FUNCTION change_log_assign_position() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(1212629836);  -- 0x4847434C, "HGCL"
    UPDATE change_log
       SET seq = nextval('change_log_position'),
           logged_at = floor(extract(epoch FROM clock_timestamp()))::bigint
     WHERE id = NEW.id;
    PERFORM pg_notify('hashguard_change_log', '');
    RETURN NULL;
END $$;
"""

# Creates a batch of cases (store/submit_batcher.py groups concurrent submits), with the statements
# of store/pg_writes.py (_UPSERT_HASHES, _LINK_SHARE_LOG) made set-wise. The result equals the
# cases created one after another in input order (tests/test_submit_batches.py compares):
# * every hash of the batch is upserted by ONE statement in digest order, so a batch takes its
#   row locks in the same global order as every other writer (no deadlock);
# * sharing runs one statement per pathway, so the second pathway's `also_shared` sees the first's
#   rows, exactly as two single submits would; a hash in two cases of the batch is added once.
_CREATE_CASES = """
CREATE FUNCTION hashguard_create_cases(
    p_refs text[], p_pathways text[], p_token_verifiers bytea[], p_at timestamptz,
    p_idempotency_digests bytea[], p_idempotency_requests bytea[],
    p_idempotency_sealed_tokens bytea[],
    p_case_of_hash int[], p_types text[], p_values text[], p_qualities smallint[],
    p_digests bytea[], p_now bigint)
RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    v_case_ids bigint[];
    v_pathway text;
BEGIN
    WITH inserted AS (
        INSERT INTO cases (ref, pathway, status, token_verifier, created_at, updated_at,
                           idempotency_digest, idempotency_request, idempotency_sealed_token)
        SELECT c.ref, c.pathway, 'active', c.verifier, p_at, p_at, c.idem, c.request, c.sealed
        FROM unnest(p_refs, p_pathways, p_token_verifiers, p_idempotency_digests,
                    p_idempotency_requests, p_idempotency_sealed_tokens)
             AS c(ref, pathway, verifier, idem, request, sealed)
        RETURNING id, ref)
    SELECT array_agg(i.id ORDER BY r.n) INTO v_case_ids
    FROM unnest(p_refs) WITH ORDINALITY AS r(ref, n) JOIN inserted i ON i.ref = r.ref;

    -- DO UPDATE (not DO NOTHING) so RETURNING yields existing rows too; keeps the best quality.
    WITH upserted AS (
        INSERT INTO hashes (signal_type, value, quality, digest, state)
        SELECT DISTINCT ON (u.d) u.t, u.v, u.q, u.d, 'ok'
        FROM unnest(p_types, p_values, p_qualities, p_digests) AS u(t, v, q, d)
        ORDER BY u.d, u.q DESC NULLS LAST
        ON CONFLICT (digest) DO UPDATE SET quality = CASE
            WHEN excluded.quality IS NULL THEN hashes.quality
            WHEN hashes.quality IS NULL THEN excluded.quality
            ELSE GREATEST(hashes.quality, excluded.quality) END
        RETURNING id, digest)
    INSERT INTO case_hashes (case_id, hash_id)
    SELECT DISTINCT v_case_ids[h.c], up.id
    FROM unnest(p_case_of_hash, p_digests) AS h(c, d) JOIN upserted up ON up.digest = h.d
    ON CONFLICT DO NOTHING;

    -- New statements, so new snapshots taken while this transaction holds the hashes' row
    -- locks: the EXISTS and the state check see every writer that touched them before.
    FOR v_pathway IN SELECT DISTINCT pw FROM unnest(p_pathways) AS pw ORDER BY pw LOOP
        WITH added AS (
            INSERT INTO shared_hashes (hash_id, pathway)
            SELECT DISTINCT ch.hash_id, v_pathway
            FROM case_hashes ch JOIN hashes h ON h.id = ch.hash_id
            WHERE ch.case_id = ANY(ARRAY(
                      SELECT v_case_ids[c.n]
                      FROM unnest(p_pathways) WITH ORDINALITY AS c(pw, n)
                      WHERE c.pw = v_pathway))
              AND h.state = 'ok'
            ORDER BY ch.hash_id
            ON CONFLICT DO NOTHING
            RETURNING hash_id)
        INSERT INTO change_log (op, hash_id, signal_type, value, quality, pathway, logged_at,
                                also_shared)
        SELECT 'add', a.hash_id, h.signal_type, h.value, h.quality, v_pathway, p_now,
               EXISTS (SELECT 1 FROM shared_hashes o
                       WHERE o.hash_id = a.hash_id AND o.pathway <> v_pathway)
        FROM added a JOIN hashes h ON h.id = a.hash_id ORDER BY a.hash_id;
    END LOOP;

    RETURN v_case_ids;
END $$;
"""
_CREATE_CASES_SIGNATURE = ("hashguard_create_cases(text[], text[], bytea[], timestamptz, bytea[], "
                           "bytea[], bytea[], int[], text[], text[], smallint[], bytea[], bigint)")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_ASSIGN_POSITIONS_PER_TRANSACTION)
        op.execute(_CREATE_CASES)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS {_CREATE_CASES_SIGNATURE}")
        op.execute(_ASSIGN_POSITIONS_PER_ROW)
