-- Run once on a PostgreSQL database restored from a backup, BEFORE any hashguard process starts
-- on it:   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f deploy/after-restore.sql
--
-- Why: a backup ends at some change-log position R, but partners may have pulled past R before
-- the failure (entries that the restore lost). New entries would be numbered R+1, R+2, ...:
-- positions those partners already passed, so a partner continuing from its cursor would never
-- receive them (a hash silently never blocked). This moves every position counter a billion
-- past the restored log, so new entries are numbered after any position handed out before the
-- restore, however much the lost part held. It also records the lost range as a new log epoch
-- (table log_epochs, store/log_epochs.py): a partner whose cursor lies past the restored head has
-- received entries this database no longer has, so its next pull gets 409 `log_restored` and it
-- starts again from an empty cursor; partners at or before the restored head continue.
-- docs/operations.md "Restoring" says what to tell partners.
-- Safe to run twice (each run skips another billion and begins another epoch; positions are
-- 64-bit).
BEGIN;
-- A backup taken before hashguard's migration 0014 has no log_epochs table yet: made here as
-- that migration makes it (which then leaves it as it is).
CREATE TABLE IF NOT EXISTS log_epochs (
    epoch integer NOT NULL,
    numbering varchar(32) NOT NULL,
    restored_head bigint NOT NULL,
    resumes_at bigint NOT NULL,
    restored_at bigint NOT NULL,
    PRIMARY KEY (epoch, numbering)
);
DO $$
DECLARE
    gap CONSTANT bigint := 1000000000;
    new_epoch integer := coalesce((SELECT max(epoch) FROM log_epochs), 1) + 1;
    head bigint;
    resumes bigint;
    counter record;
BEGIN
    -- Global positions ("global"): partners entitled to every pathway read these.
    head := (SELECT coalesce(max(seq), 0) FROM change_log);
    resumes := setval('change_log_position',
                      greatest((SELECT last_value FROM change_log_position), head) + gap);
    INSERT INTO log_epochs VALUES (new_epoch, 'global', head, resumes,
                                   extract(epoch FROM now())::bigint);
    -- One counter per pathway (store/changelog.py: partners entitled to one pathway read it).
    FOR counter IN
        SELECT sequencename AS name, substr(sequencename, length('change_log_position_') + 1) AS pathway
          FROM pg_sequences
         WHERE schemaname = current_schema() AND sequencename LIKE 'change\_log\_position\_%'
    LOOP
        head := (SELECT coalesce(max(pathway_seq), 0) FROM change_log
                  WHERE pathway = counter.pathway);
        resumes := setval(format('%I', counter.name)::regclass,
                          greatest((SELECT coalesce(last_value, 0) FROM pg_sequences
                                     WHERE schemaname = current_schema()
                                       AND sequencename = counter.name), head) + gap);
        INSERT INTO log_epochs VALUES (new_epoch, counter.pathway, head, resumes,
                                       extract(epoch FROM now())::bigint);
    END LOOP;
END
$$;
COMMIT;
-- The restored tables have no planner statistics yet (hashguard also analyzes them at start).
ANALYZE;
