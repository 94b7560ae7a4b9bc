-- Run once by the postgres image's entrypoint, as the superuser, when the data volume is empty.
-- Two roles, neither superuser nor BYPASSRLS (foundry/db/roles.py): `foundry_owner` owns the
-- database and its shared tables, and migrations connect as it; `foundry`, the application's,
-- only uses those tables' rows (grants made by migrate_platform), so it can neither lift their
-- Row-Level Security or triggers nor truncate them. `foundry` creates and owns the tenant
-- schemas; the owner is a member of it, to migrate them. The passwords are the development
-- stack's (docker-compose.yml); production creates these roles with its own secrets.
CREATE ROLE foundry LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB NOREPLICATION PASSWORD 'foundry';
CREATE ROLE foundry_owner LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB NOREPLICATION PASSWORD 'foundry_owner';
GRANT foundry TO foundry_owner;
CREATE DATABASE foundry OWNER foundry_owner;
GRANT CONNECT, CREATE, TEMPORARY ON DATABASE foundry TO foundry;
-- Whole-database backups (manage.py backup): reads everything, Row-Level Security included,
-- and writes nothing.
CREATE ROLE foundry_backup LOGIN NOSUPERUSER BYPASSRLS NOCREATEROLE NOCREATEDB NOREPLICATION PASSWORD 'foundry_backup';
GRANT pg_read_all_data TO foundry_backup;
