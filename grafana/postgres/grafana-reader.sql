-- The role Grafana connects as: it can read benchfleet's tables and nothing else.
--
-- Run once, connected to the benchfleet database as the role the control plane migrates with
-- (so the default privileges below cover the tables that later migrations create):
--
--   psql "$BENCHFLEET_DATABASE_URL" -f grafana/postgres/grafana-reader.sql
--   psql "$BENCHFLEET_DATABASE_URL" -c '\password benchfleet_grafana'
--
-- Safe to run again. No password is set here: choose one with \password and give it to Grafana
-- as BENCHFLEET_PG_PASSWORD.
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
GRANT SELECT ON ALL TABLES IN SCHEMA public TO benchfleet_grafana;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO benchfleet_grafana;
