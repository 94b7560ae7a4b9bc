-- Run once by the postgres image's entrypoint, as the superuser, when the data volume is empty.
-- The application role: it owns its database (it creates tenant schemas), but it is neither
-- superuser nor BYPASSRLS, so Row-Level Security binds it. The password is the development
-- stack's (docker-compose.yml); production creates this role with its own secret.
CREATE ROLE foundry LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB NOREPLICATION PASSWORD 'foundry';
CREATE DATABASE foundry OWNER foundry;
-- Whole-database backups (manage.py backup): reads everything, Row-Level Security included,
-- and writes nothing.
CREATE ROLE foundry_backup LOGIN NOSUPERUSER BYPASSRLS NOCREATEROLE NOCREATEDB NOREPLICATION PASSWORD 'foundry_backup';
GRANT pg_read_all_data TO foundry_backup;
