-- The role Grafana connects as: it can read benchfleet's tables and nothing else, and no
-- personal data: not the text of citizens' ideas (it may name people, addresses, phone numbers),
-- not their contact details, not the people behind organisations or actions.
--
-- Run it connected to the benchfleet database as the role the control plane migrates with, after
-- the control plane has migrated it, and again after every upgrade of the control plane:
--
--   psql "$BENCHFLEET_DATABASE_URL" -f grafana/postgres/grafana-reader.sql
--   psql "$BENCHFLEET_DATABASE_URL" -c '\password benchfleet_grafana'
--
-- Safe to run again. No password is set here: choose one with \password and give it to Grafana
-- as BENCHFLEET_PG_PASSWORD.
--
-- Tables a later migration creates are not readable until the script runs again: granting
-- them by default would hand Grafana every column of a new table holding personal data (as
-- `ideas` did when it arrived). Failing closed shows up as a dashboard error instead.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'benchfleet_grafana') THEN
        CREATE ROLE benchfleet_grafana LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
END
$$;

-- Even if a grant slips through later, every transaction of this role is read-only.
ALTER ROLE benchfleet_grafana SET default_transaction_read_only = on;
-- A runaway dashboard query must not hold a connection for minutes.
ALTER ROLE benchfleet_grafana SET statement_timeout = '30s';

DO $$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO benchfleet_grafana', current_database());
END
$$;
GRANT USAGE ON SCHEMA public TO benchfleet_grafana;
-- Earlier versions of this script granted every future table; take that back.
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE SELECT ON TABLES FROM benchfleet_grafana;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO benchfleet_grafana;

-- Idea routing (from migration 0006): only the columns without personal data. Column grants
-- rather than views, so that migrations stay free to change these tables (a view would block
-- dropping a column it uses) and a column added later stays hidden until granted here.
-- Revoking SELECT on a table also revokes its column grants, so each run starts clean.
DO $$
BEGIN
    IF to_regclass('public.ideas') IS NULL THEN
        RETURN;
    END IF;
    REVOKE SELECT ON ideas, organisations, idea_events, routing_rule_sets, routing_audit FROM benchfleet_grafana;
    -- Not: text, contact, fingerprint (a hash of the text: guessable), flag (may quote it).
    GRANT SELECT (id, tracking_code, bench_id, municipality, submitted_at, received_at, category, lang,
                  consent, duplicate_of, state, org_id, excluded, attempts, rule, rule_version,
                  confirm_within_s, act_within_s, deadline, updated_at, confirmed_at, completed_at)
        ON ideas TO benchfleet_grafana;
    -- Not: contact_email, contact_phone, website, description, decided_by, note.
    GRANT SELECT (id, name, municipalities, categories, state, created_at, updated_at)
        ON organisations TO benchfleet_grafana;
    -- Not: actor (a person's name or e-mail address for members and operators), the notes.
    GRANT SELECT (id, idea_id, at, action, from_state, to_state, org_id) ON idea_events TO benchfleet_grafana;
    -- Not: created_by.
    GRANT SELECT (version, rules, created_at) ON routing_rule_sets TO benchfleet_grafana;
    -- routing_audit: nothing (who decided, and applications with their contact details).
END
$$;
