"""The ground every package stands on: settings (config), the database (db), time stamps (clock), the interface
language (i18n) and the one error a user sees (errors). Imports nothing else from core/."""
