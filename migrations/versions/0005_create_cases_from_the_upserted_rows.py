"""PostgreSQL: a batch of submits shares and logs its hashes from the rows it upserted

Revision ID: 0005
Revises: 0004

Measured cost, not meaning. 0004's `hashguard_create_cases` found the hashes to share by joining
`case_hashes` to `hashes` again, and the change-log insert joined `hashes` once more for each
entry's value. PL/pgSQL keeps one plan per statement for the life of a connection, and a plan
made while the tables were small scans `hashes` from end to end: on a new database, a batch of
two submits took 20 ms after 1,000 batches and 56 ms after 1,400, growing with the table, until
an ANALYZE happened to invalidate the plan (measured with auto_explain). Production databases
start empty too.

Now the upsert's RETURNING hands back each hash's id, value, quality and state, and everything
after it reads those arrays; no statement joins a table it could scan whole. The meaning is 0004's:
- the state comes from the upsert, which locked the row and read its latest version (ON CONFLICT
  DO UPDATE), so the "decide under the hash row locks" reasoning of store/pg_writes.py holds;
- each pathway is still shared by a statement of its own (a new snapshot after the locks, and the
  EXISTS sees the pathways shared before it in the same batch);
- entries are positioned in (pathway, hash id) order, as before.
"""
import importlib.util
from pathlib import Path

from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


_CREATE_CASES = """
CREATE OR REPLACE FUNCTION hashguard_create_cases(
    p_refs text[], p_pathways text[], p_token_verifiers bytea[], p_at timestamptz,
    p_idempotency_digests bytea[], p_idempotency_requests bytea[],
    p_idempotency_sealed_tokens bytea[],
    p_case_of_hash int[], p_types text[], p_values text[], p_qualities smallint[],
    p_digests bytea[], p_now bigint, p_position_now boolean)
RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    v_case_ids bigint[];
    -- The batch's hashes that may enter the shared set: one element per (pathway, hash).
    v_share_ids bigint[];
    v_share_pathways text[];
    v_share_types text[];
    v_share_values text[];
    v_share_qualities smallint[];
    v_pathway text;
    v_hash_ids bigint[] := '{}';
    v_also bool[] := '{}';
    v_entry_pathways text[] := '{}';
    v_added bigint[];
    v_added_also bool[];
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

    -- DO UPDATE (not DO NOTHING) so RETURNING yields existing rows too, each locked and read in
    -- its latest version; keeps the best quality.
    WITH upserted AS (
        INSERT INTO hashes (signal_type, value, quality, digest, state)
        SELECT DISTINCT ON (u.d) u.t, u.v, u.q, u.d, 'ok'
        FROM unnest(p_types, p_values, p_qualities, p_digests) AS u(t, v, q, d)
        ORDER BY u.d, u.q DESC NULLS LAST
        ON CONFLICT (digest) DO UPDATE SET quality = CASE
            WHEN excluded.quality IS NULL THEN hashes.quality
            WHEN hashes.quality IS NULL THEN excluded.quality
            ELSE GREATEST(hashes.quality, excluded.quality) END
        RETURNING id, digest, signal_type, value, quality, state),
    of_case AS (
        SELECT v_case_ids[h.c] AS case_id, p_pathways[h.c] AS pathway, up.*
        FROM unnest(p_case_of_hash, p_digests) AS h(c, d) JOIN upserted up ON up.digest = h.d),
    linked AS (
        INSERT INTO case_hashes (case_id, hash_id)
        SELECT DISTINCT case_id, id FROM of_case
        ON CONFLICT DO NOTHING)
    SELECT array_agg(s.id ORDER BY s.pathway, s.id), array_agg(s.pathway ORDER BY s.pathway, s.id),
           array_agg(s.signal_type ORDER BY s.pathway, s.id),
           array_agg(s.value ORDER BY s.pathway, s.id),
           array_agg(s.quality ORDER BY s.pathway, s.id)
      INTO v_share_ids, v_share_pathways, v_share_types, v_share_values, v_share_qualities
      FROM (SELECT DISTINCT id, pathway, signal_type, value, quality
              FROM of_case WHERE state = 'ok') AS s;

    -- New statements, so new snapshots taken while this transaction holds the hashes' row
    -- locks: the EXISTS sees every writer that touched them before.
    FOR v_pathway IN SELECT DISTINCT pw FROM unnest(v_share_pathways) AS pw ORDER BY pw LOOP
        WITH added AS (
            INSERT INTO shared_hashes (hash_id, pathway)
            SELECT s.id, v_pathway FROM unnest(v_share_ids, v_share_pathways) AS s(id, pw)
            WHERE s.pw = v_pathway
            ORDER BY s.id
            ON CONFLICT DO NOTHING
            RETURNING hash_id)
        SELECT coalesce(array_agg(a.hash_id ORDER BY a.hash_id), '{}'),
               coalesce(array_agg(EXISTS (SELECT 1 FROM shared_hashes o
                                          WHERE o.hash_id = a.hash_id
                                            AND o.pathway <> v_pathway)
                                  ORDER BY a.hash_id), '{}')
          INTO v_added, v_added_also
          FROM added a;
        v_hash_ids := v_hash_ids || v_added;
        v_also := v_also || v_added_also;
        v_entry_pathways := v_entry_pathways || array_fill(v_pathway, ARRAY[cardinality(v_added)]);
    END LOOP;

    IF cardinality(v_hash_ids) > 0 AND p_position_now THEN
        PERFORM pg_advisory_xact_lock(1212629836);  -- 0x4847434C, "HGCL": held until COMMIT
    END IF;
    IF cardinality(v_hash_ids) > 0 THEN
        INSERT INTO change_log (seq, op, hash_id, signal_type, value, quality, pathway,
                                logged_at, also_shared)
        SELECT CASE WHEN p_position_now THEN nextval('change_log_position') END, 'add',
               e.hash_id, e.signal_type, e.value, e.quality, e.pathway,
               CASE WHEN p_position_now THEN floor(extract(epoch FROM clock_timestamp()))::bigint
                    ELSE p_now END,
               e.also
        FROM (SELECT u.hash_id, s.t AS signal_type, s.v AS value, s.q AS quality, u.pathway,
                     u.also
                FROM unnest(v_hash_ids, v_entry_pathways, v_also) WITH ORDINALITY
                     AS u(hash_id, pathway, also, n)
                JOIN unnest(v_share_ids, v_share_pathways, v_share_types, v_share_values,
                            v_share_qualities) AS s(id, pw, t, v, q)
                  ON s.id = u.hash_id AND s.pw = u.pathway
               ORDER BY u.n) AS e;  -- positions drawn in this order (the trigger's pattern)
        IF p_position_now THEN
            -- Wakes long-polling partners in every API process (partners/wakeup.py), at COMMIT
            -- (otherwise the trigger does).
            PERFORM pg_notify('hashguard_change_log', '');
        END IF;
    END IF;

    RETURN v_case_ids;
END $$;
"""


def _revision_0004():
    path = Path(__file__).with_name("0004_batch_submits_position_their_entries.py")
    spec = importlib.util.spec_from_file_location("hashguard_migration_0004", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_CREATE_CASES)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_revision_0004()._CREATE_CASES.replace(
            "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
