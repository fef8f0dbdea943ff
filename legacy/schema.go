package legacy

import "github.com/ficus-gw/ficus/internal/sqlitedb"

// migrations is the shop's schema. Append steps; never edit a shipped one.
//
// Instants are stored as Unix seconds and only rendered as local time on
// the wire. chg_seq is one shop-wide, strictly increasing change sequence:
// every insert or update of an article or order takes the next value from
// chg_counter inside the same write transaction, and the single writer
// connection commits transactions in the order they took their numbers, so
// a reader never sees a gap that is filled later.
var migrations = []sqlitedb.Migration{
	{Name: "initial schema", SQL: `
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE chg_counter (id INTEGER PRIMARY KEY CHECK (id = 1), val INTEGER NOT NULL);
INSERT INTO chg_counter (id, val) VALUES (1, 0);
CREATE TABLE artikel (
	art_nr    TEXT PRIMARY KEY,
	sort_nr   INTEGER NOT NULL UNIQUE,
	bez       TEXT NOT NULL,
	beschr    TEXT NOT NULL,
	kat       TEXT NOT NULL,
	ean       TEXT NOT NULL,
	preis_ct  INTEGER NOT NULL CHECK (preis_ct >= 0),
	bestand   INTEGER NOT NULL CHECK (bestand >= 0),
	geaendert INTEGER NOT NULL,
	chg_seq   INTEGER NOT NULL UNIQUE
);
CREATE INDEX artikel_kat ON artikel (kat, sort_nr);
CREATE TABLE kunde (
	cust_no TEXT PRIMARY KEY,
	name    TEXT NOT NULL,
	ort     TEXT NOT NULL,
	email   TEXT NOT NULL,
	seit    INTEGER NOT NULL
);
CREATE TABLE auftrag (
	ord_no    INTEGER PRIMARY KEY,
	cust_no   TEXT NOT NULL REFERENCES kunde (cust_no),
	sts_cd    INTEGER NOT NULL CHECK (sts_cd IN (1, 3, 7, 9, 99)),
	ext_ref   TEXT UNIQUE,
	summe_ct  INTEGER NOT NULL,
	angelegt  INTEGER NOT NULL,
	geaendert INTEGER NOT NULL,
	chg_seq   INTEGER NOT NULL UNIQUE
);
CREATE INDEX auftrag_kunde ON auftrag (cust_no, ord_no);
CREATE TABLE auftrag_pos (
	ord_no   INTEGER NOT NULL REFERENCES auftrag (ord_no),
	pos_nr   INTEGER NOT NULL,
	art_nr   TEXT NOT NULL REFERENCES artikel (art_nr),
	menge    INTEGER NOT NULL CHECK (menge > 0),
	preis_ct INTEGER NOT NULL,
	PRIMARY KEY (ord_no, pos_nr)
);
`},
}
