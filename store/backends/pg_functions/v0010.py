"""Write rules 0010: the first version kept as source, installed by migrations/versions/0010.

The rules in words are in store/backends/__init__.py; here each is one function (see this
package's docstring for which). Besides the submit's functions, this version holds the commit
trigger's `change_log_assign_position`, which draws both positions of an entry (the global one
and its pathway's own) and its time, to the hour.
"""
from __future__ import annotations

from store.backends.pg_functions import ReplaceableFunctions

WRITE_RULES = ReplaceableFunctions(revision="0010", create=r"""
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
    -- i.e. only rows inserted since this transaction's first. Both positions are drawn in id
    -- order: the global one and the entry's pathway's own.
    UPDATE change_log c
       SET seq = p.seq,
           pathway_seq = p.pathway_seq,
           logged_at = (floor(extract(epoch FROM clock_timestamp()) / 3600) * 3600)::bigint
      FROM (SELECT mine.id, nextval('change_log_position') AS seq,
                   nextval(('change_log_position_' || mine.pathway)::regclass) AS pathway_seq
              FROM (SELECT id, pathway FROM change_log
                     WHERE id >= NEW.id AND coalesce(seq, 0) = 0 ORDER BY id) AS mine) AS p
     WHERE c.id = p.id;
    -- Wakes long-polling partners in every API process (partners/wakeup.py). Delivered at
    -- COMMIT; identical payloads in one transaction collapse into one notification.
    PERFORM pg_notify('hashguard_change_log', '');
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION hashguard_upsert_hashes(
    p_types text[], p_values text[], p_qualities smallint[], p_digests bytea[])
RETURNS TABLE (id bigint, digest bytea, signal_type text, value text, quality smallint,
               state text, held text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    -- DO UPDATE (not DO NOTHING) so RETURNING yields existing rows too, each locked and read in
    -- its latest version. A value submitted twice in one call keeps its best quality.
    RETURN QUERY
    INSERT INTO hashes AS h (signal_type, value, quality, digest, state)
    SELECT DISTINCT ON (u.d) u.t, u.v, u.q, u.d, 'ok'
    FROM unnest(p_types, p_values, p_qualities, p_digests) AS u(t, v, q, d)
    ORDER BY u.d, u.q DESC NULLS LAST
    ON CONFLICT (digest) DO UPDATE SET quality = CASE
        WHEN excluded.quality IS NULL THEN h.quality
        WHEN h.quality IS NULL THEN excluded.quality
        ELSE GREATEST(h.quality, excluded.quality) END
    RETURNING h.id, h.digest, h.signal_type::text, h.value, h.quality, h.state::text,
              h.held_pathways::text;
END $$;

CREATE OR REPLACE FUNCTION hashguard_append(
    p_op text, p_pathway text, p_ids bigint[], p_also boolean[],
    p_row_ids bigint[], p_types text[], p_values text[], p_qualities smallint[],
    p_now bigint, p_position_now boolean)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    -- One entry per p_ids element, in that order; values come from the rows the caller read
    -- (p_row_ids and the arrays beside it), never from another read of `hashes`.
    IF cardinality(p_ids) = 0 THEN
        RETURN;
    END IF;
    IF p_position_now THEN
        PERFORM pg_advisory_xact_lock(1212629836);  -- 0x4847434C, "HGCL": held until COMMIT
    END IF;
    INSERT INTO change_log (seq, pathway_seq, op, hash_id, signal_type, value, quality, pathway,
                            logged_at, also_shared)
    SELECT CASE WHEN p_position_now THEN nextval('change_log_position') END,
           CASE WHEN p_position_now
                THEN nextval(('change_log_position_' || p_pathway)::regclass) END,
           p_op, e.id, e.t, e.v, e.q, p_pathway,
           CASE WHEN p_position_now THEN (floor(extract(epoch FROM clock_timestamp()) / 3600) * 3600)::bigint
                ELSE p_now END,
           e.also
    FROM (SELECT u.id, r.t, r.v, r.q, u.also
            FROM unnest(p_ids, p_also) WITH ORDINALITY AS u(id, also, n)
            JOIN (SELECT DISTINCT ON (l.id) l.id, l.t, l.v, l.q
                    FROM unnest(p_row_ids, p_types, p_values, p_qualities) AS l(id, t, v, q)
                    ORDER BY l.id) AS r ON r.id = u.id
           ORDER BY u.n) AS e;  -- positions drawn in this order
    IF p_position_now THEN
        -- Wakes long-polling partners in every API process (partners/wakeup.py) at COMMIT;
        -- otherwise the commit-time trigger does.
        PERFORM pg_notify('hashguard_change_log', '');
    END IF;
END $$;

CREATE OR REPLACE FUNCTION hashguard_share(
    p_pathway text, p_ids bigint[], p_states text[], p_held text[],
    p_row_ids bigint[], p_types text[], p_values text[], p_qualities smallint[],
    p_now bigint, p_position_now boolean)
RETURNS SETOF bigint LANGUAGE plpgsql AS $$
DECLARE
    v_added bigint[];
    v_also boolean[];
BEGIN
    -- A rejected hash is not shared, nor one that disputes hold back from this pathway:
    -- disputes outrank new submissions until an operator has looked (partners/review.py).
    WITH added AS (
        INSERT INTO shared_hashes (hash_id, pathway)
        SELECT c.id, p_pathway FROM unnest(p_ids, p_states, p_held) AS c(id, state, held)
        WHERE c.state = 'ok'
          AND NOT p_pathway = ANY(string_to_array(coalesce(c.held, ''), ','))
        ORDER BY c.id
        ON CONFLICT DO NOTHING
        RETURNING hash_id)
    SELECT coalesce(array_agg(a.hash_id ORDER BY a.hash_id), '{}'),
           coalesce(array_agg(EXISTS (SELECT 1 FROM shared_hashes o
                                      WHERE o.hash_id = a.hash_id AND o.pathway <> p_pathway)
                              ORDER BY a.hash_id), '{}')
      INTO v_added, v_also
      FROM added a;
    PERFORM hashguard_append('add', p_pathway, v_added, v_also, p_row_ids, p_types, p_values,
                             p_qualities, p_now, p_position_now);
    RETURN QUERY SELECT unnest(v_added);
END $$;

CREATE OR REPLACE FUNCTION hashguard_unshare(
    p_pathway text, p_ids bigint[], p_types text[], p_values text[], p_qualities smallint[],
    p_now bigint, p_position_now boolean)
RETURNS SETOF bigint LANGUAGE plpgsql AS $$
DECLARE
    v_removed bigint[];
    v_also boolean[];
BEGIN
    WITH removed AS (
        DELETE FROM shared_hashes
        WHERE hash_id = ANY(p_ids) AND pathway = p_pathway
        RETURNING hash_id)
    SELECT coalesce(array_agg(r.hash_id ORDER BY r.hash_id), '{}'),
           coalesce(array_agg(EXISTS (SELECT 1 FROM shared_hashes o
                                      WHERE o.hash_id = r.hash_id AND o.pathway <> p_pathway)
                              ORDER BY r.hash_id), '{}')
      INTO v_removed, v_also
      FROM removed r;
    PERFORM hashguard_append('remove', p_pathway, v_removed, v_also, p_ids, p_types, p_values,
                             p_qualities, p_now, p_position_now);
    RETURN QUERY SELECT unnest(v_removed);
END $$;

CREATE OR REPLACE FUNCTION hashguard_link_and_share(
    p_case_ids bigint[], p_pathways text[], p_types text[], p_values text[],
    p_qualities smallint[], p_digests bytea[], p_now bigint, p_position_now boolean)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    -- One element per distinct (pathway, hash), in (pathway, hash id) order.
    v_ids bigint[];
    v_pathways text[];
    v_states text[];
    v_held text[];
    v_types text[];
    v_values text[];
    v_qualities smallint[];
    v_linked integer;
    v_pathway text;
BEGIN
    -- Element i of the p_ arrays: hash i, held by case p_case_ids[i] under p_pathways[i].
    WITH upserted AS (
        SELECT * FROM hashguard_upsert_hashes(p_types, p_values, p_qualities, p_digests)),
    of_case AS (
        SELECT h.case_id, h.pathway, up.id, up.signal_type, up.value, up.quality, up.state,
               up.held, h.q AS reported_quality
        FROM unnest(p_case_ids, p_pathways, p_digests, p_qualities) AS h(case_id, pathway, d, q)
        JOIN upserted up ON up.digest = h.d),
    linked AS (
        -- The quality this case reported (its best, if it sent a value twice); a link that
        -- exists keeps the quality it was made with.
        INSERT INTO case_hashes (case_id, hash_id, quality)
        SELECT DISTINCT ON (case_id, id) case_id, id, reported_quality FROM of_case
        ORDER BY case_id, id, reported_quality DESC NULLS LAST
        ON CONFLICT DO NOTHING
        RETURNING 1),
    to_share AS (
        SELECT DISTINCT pathway, id, signal_type, value, quality, state, held FROM of_case)
    SELECT (SELECT count(*) FROM linked),
           array_agg(s.id ORDER BY s.pathway, s.id), array_agg(s.pathway ORDER BY s.pathway, s.id),
           array_agg(s.state ORDER BY s.pathway, s.id),
           array_agg(s.held ORDER BY s.pathway, s.id),
           array_agg(s.signal_type ORDER BY s.pathway, s.id),
           array_agg(s.value ORDER BY s.pathway, s.id),
           array_agg(s.quality ORDER BY s.pathway, s.id)
      INTO v_linked, v_ids, v_pathways, v_states, v_held, v_types, v_values, v_qualities
      FROM to_share s;

    FOR v_pathway IN SELECT DISTINCT pw FROM unnest(v_pathways) AS pw ORDER BY pw LOOP
        PERFORM hashguard_share(
            v_pathway,
            ARRAY(SELECT x.id FROM unnest(v_ids, v_pathways) WITH ORDINALITY AS x(id, pw, n)
                  WHERE x.pw = v_pathway ORDER BY x.n),
            ARRAY(SELECT x.s FROM unnest(v_states, v_pathways) WITH ORDINALITY AS x(s, pw, n)
                  WHERE x.pw = v_pathway ORDER BY x.n),
            ARRAY(SELECT x.h FROM unnest(v_held, v_pathways) WITH ORDINALITY AS x(h, pw, n)
                  WHERE x.pw = v_pathway ORDER BY x.n),
            -- the whole batch's rows: hashguard_append looks entries' values up by id
            v_ids, v_types, v_values, v_qualities, p_now, p_position_now);
    END LOOP;
    RETURN coalesce(v_linked, 0);
END $$;

CREATE OR REPLACE FUNCTION hashguard_create_cases(
    p_refs text[], p_pathways text[], p_token_verifiers bytea[], p_at timestamptz,
    p_idempotency_digests bytea[], p_idempotency_requests bytea[],
    p_idempotency_sealed_tokens bytea[],
    p_case_of_hash int[], p_types text[], p_values text[], p_qualities smallint[],
    p_digests bytea[], p_now bigint, p_position_now boolean)
RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    v_case_ids bigint[];
BEGIN
    WITH inserted AS (
        INSERT INTO cases (ref, pathway, status, token_verifier, created_at, updated_at,
                           idempotency_digest, idempotency_request, idempotency_sealed_token,
                           opened_event)
        SELECT c.ref, c.pathway, 'active', c.verifier, p_at, p_at, c.idem, c.request, c.sealed,
               nextval('hashguard_events')
        FROM unnest(p_refs, p_pathways, p_token_verifiers, p_idempotency_digests,
                    p_idempotency_requests, p_idempotency_sealed_tokens)
             AS c(ref, pathway, verifier, idem, request, sealed)
        RETURNING id, ref)
    SELECT array_agg(i.id ORDER BY r.n) INTO v_case_ids
    FROM unnest(p_refs) WITH ORDINALITY AS r(ref, n) JOIN inserted i ON i.ref = r.ref;

    -- p_case_of_hash[i]: the (1-based) case that holds hash i.
    PERFORM hashguard_link_and_share(
        ARRAY(SELECT v_case_ids[c] FROM unnest(p_case_of_hash) WITH ORDINALITY AS x(c, n)
              ORDER BY x.n),
        ARRAY(SELECT p_pathways[c] FROM unnest(p_case_of_hash) WITH ORDINALITY AS x(c, n)
              ORDER BY x.n),
        p_types, p_values, p_qualities, p_digests, p_now, p_position_now);
    RETURN v_case_ids;
END $$;
""", drop="""
DROP FUNCTION IF EXISTS hashguard_link_and_share(bigint[], text[], text[], text[], smallint[],
                                                 bytea[], bigint, boolean);
DROP FUNCTION IF EXISTS hashguard_share(text, bigint[], text[], text[], bigint[], text[],
                                        text[], smallint[], bigint, boolean);
DROP FUNCTION IF EXISTS hashguard_unshare(text, bigint[], text[], text[], smallint[], bigint,
                                          boolean);
DROP FUNCTION IF EXISTS hashguard_append(text, text, bigint[], boolean[], bigint[], text[],
                                         text[], smallint[], bigint, boolean);
DROP FUNCTION IF EXISTS hashguard_upsert_hashes(text[], text[], smallint[], bytea[]);
""", names=("change_log_assign_position", "hashguard_upsert_hashes", "hashguard_append",
            "hashguard_share", "hashguard_unshare", "hashguard_link_and_share",
            "hashguard_create_cases"))
