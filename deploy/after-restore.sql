-- Run once on a PostgreSQL database restored from a backup, BEFORE any hashguard process starts
-- on it:   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f deploy/after-restore.sql
--
-- Why: a backup ends at some change-log position R, but partners may have pulled past R before
-- the failure (entries that the restore lost). New entries would be numbered R+1, R+2, ...:
-- positions those partners already passed, so a partner continuing from its cursor would never
-- receive them (a hash silently never blocked). This moves every position counter a billion
-- past the restored log, so new entries are numbered after any position handed out before the
-- restore, however much the lost part held. A partner whose cursor lies in the skipped range
-- gets the new entries; docs/operations.md "Restoring" says what to tell partners.
-- Safe to run twice (each run skips another billion; positions are 64-bit).
DO $$
DECLARE
    gap CONSTANT bigint := 1000000000;
    counter record;
BEGIN
    PERFORM setval('change_log_position',
                   greatest((SELECT last_value FROM change_log_position),
                            (SELECT coalesce(max(seq), 0) FROM change_log)) + gap);
    -- One counter per pathway (store/changelog.py: partners entitled to one pathway read it).
    FOR counter IN
        SELECT sequencename AS name, substr(sequencename, length('change_log_position_') + 1) AS pathway
          FROM pg_sequences
         WHERE schemaname = current_schema() AND sequencename LIKE 'change\_log\_position\_%'
    LOOP
        PERFORM setval(format('%I', counter.name)::regclass,
                       greatest((SELECT coalesce(last_value, 0) FROM pg_sequences
                                  WHERE schemaname = current_schema()
                                    AND sequencename = counter.name),
                                (SELECT coalesce(max(pathway_seq), 0) FROM change_log
                                  WHERE pathway = counter.pathway)) + gap);
    END LOOP;
END
$$;
-- The restored tables have no planner statistics yet (hashguard also analyzes them at start).
ANALYZE;
