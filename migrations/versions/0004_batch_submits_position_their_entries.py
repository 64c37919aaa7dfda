"""PostgreSQL: a batch of submits positions its change-log entries as it inserts them

Revision ID: 0004
Revises: 0003

Measured cost, not meaning (bench/submit_bench.py): every submitted hash's entry was inserted
without a position, queued a deferred trigger event, and at COMMIT the trigger fired once per row
(a PL/pgSQL call and a lookup each) and the first firing rewrote every row with an UPDATE: a
second version of each entry, with its five index entries written again (and later vacuumed).

Now `hashguard_create_cases(..., p_position_now => true)` shares every pathway's hashes first,
and only then takes the change-log lock (the same transaction-scoped advisory lock the trigger
takes) and inserts the batch's entries with their positions already drawn. The submit batcher
calls it so, in autocommit: the statement is the whole transaction, and nothing that can wait
comes after the lock (the insert touches no row another transaction can hold), so the lock is
held, as before, for one statement and the commit record. Order and gap-freeness are those of
store/changelog.py: every position is drawn under the lock, released only after the commit is
visible. Called inside a longer transaction (store/cases.create_case), `p_position_now => false`
leaves the positions to the trigger at COMMIT, so the lock is never held across a round trip.

The trigger stays for every other writer (withdrawals, additions, SQLAlchemy paths) and now fires
only for rows inserted without a position (`WHEN (NEW.seq IS NULL)`), so a positioned insert
queues no trigger event at all.
"""
import importlib.util
from pathlib import Path

from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


_TRIGGER_FOR_UNPOSITIONED_ROWS = """
DROP TRIGGER change_log_position_at_commit ON change_log;
CREATE CONSTRAINT TRIGGER change_log_position_at_commit AFTER INSERT ON change_log
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.seq IS NULL)
    EXECUTE FUNCTION change_log_assign_position();
"""
_TRIGGER_FOR_EVERY_ROW = """
DROP TRIGGER change_log_position_at_commit ON change_log;
CREATE CONSTRAINT TRIGGER change_log_position_at_commit AFTER INSERT ON change_log
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION change_log_assign_position();
"""

# 0003's arguments plus p_position_now, same result (store/pg_writes.create_cases calls it). The
# entries are collected per pathway, then logged in one insert, positions in (pathway, hash id)
# order -- the order 0003's rows were positioned in (their ids followed the pathway loop and
# hash-id order).
_CREATE_CASES = """
CREATE FUNCTION hashguard_create_cases(
    p_refs text[], p_pathways text[], p_token_verifiers bytea[], p_at timestamptz,
    p_idempotency_digests bytea[], p_idempotency_requests bytea[],
    p_idempotency_sealed_tokens bytea[],
    p_case_of_hash int[], p_types text[], p_values text[], p_qualities smallint[],
    p_digests bytea[], p_now bigint, p_position_now boolean)
RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    v_case_ids bigint[];
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
        FROM (SELECT u.hash_id, h.signal_type, h.value, h.quality, u.pathway, u.also
                FROM unnest(v_hash_ids, v_entry_pathways, v_also) WITH ORDINALITY
                     AS u(hash_id, pathway, also, n)
                JOIN hashes h ON h.id = u.hash_id
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
_CREATE_CASES_SIGNATURE = ("hashguard_create_cases(text[], text[], bytea[], timestamptz, bytea[], "
                           "bytea[], bytea[], int[], text[], text[], smallint[], bytea[], bigint, "
                           "boolean)")


def _revision_0003():
    path = Path(__file__).with_name("0003_submit_in_one_round_trip.py")
    spec = importlib.util.spec_from_file_location("hashguard_migration_0003", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_TRIGGER_FOR_UNPOSITIONED_ROWS)
        op.execute(f"DROP FUNCTION {_revision_0003()._CREATE_CASES_SIGNATURE}")
        op.execute(_CREATE_CASES)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_TRIGGER_FOR_EVERY_ROW)
        op.execute(f"DROP FUNCTION {_CREATE_CASES_SIGNATURE}")
        op.execute(_revision_0003()._CREATE_CASES)
