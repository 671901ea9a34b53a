// CSQLite: the system SQLite (Debian libsqlite3-dev) for the hbbs peer table (PROTOCOL.md §10).
// Why the system library: upstream's files are plain SQLite 3 databases, and Debian's build is
// thread-safe and maintained. Nothing is wrapped: <sqlite3.h> imports cleanly. Its one macro
// Swift cannot import, SQLITE_TRANSIENT, is rebuilt in Swift (PeerStore/SQLiteConnection.swift).
#ifndef CSQLITE_H
#define CSQLITE_H
#include <sqlite3.h>
#endif
