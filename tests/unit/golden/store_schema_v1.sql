-- The foundation's store (schema 1), as SQLAlchemy created it in SQLite: migration tests open it.
CREATE TABLE meta (
	"key" VARCHAR(64) NOT NULL, 
	value TEXT NOT NULL, 
	PRIMARY KEY ("key")
);
CREATE TABLE runs (
	id VARCHAR(64) NOT NULL, 
	started_at DATETIME NOT NULL, 
	finished_at DATETIME, 
	status VARCHAR(16) NOT NULL, 
	spec_name VARCHAR(64) NOT NULL, 
	spec_path TEXT NOT NULL, 
	spec_hash VARCHAR(64) NOT NULL, 
	reference VARCHAR(64) NOT NULL, 
	system VARCHAR(64), 
	command TEXT NOT NULL, 
	tool_version VARCHAR(32) NOT NULL, 
	host TEXT NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE cells (
	id INTEGER NOT NULL, 
	run_id VARCHAR(64) NOT NULL, 
	config_hash VARCHAR(32) NOT NULL, 
	repeat INTEGER NOT NULL, 
	system VARCHAR(64) NOT NULL, 
	framework VARCHAR(64) NOT NULL, 
	version VARCHAR(64) NOT NULL, 
	variant VARCHAR(64) NOT NULL, 
	workload VARCHAR(64) NOT NULL, 
	model VARCHAR(64) NOT NULL, 
	dataset VARCHAR(64) NOT NULL, 
	batch_size INTEGER NOT NULL, 
	epochs INTEGER NOT NULL, 
	options TEXT NOT NULL, 
	config TEXT NOT NULL, 
	image TEXT NOT NULL, 
	image_id VARCHAR(128), 
	status VARCHAR(16) NOT NULL, 
	exit_code INTEGER, 
	started_at DATETIME NOT NULL, 
	finished_at DATETIME NOT NULL, 
	log_path TEXT, 
	result_path TEXT, 
	versions TEXT, 
	notes TEXT, 
	log_tail TEXT, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_cell_identity UNIQUE (run_id, config_hash, repeat), 
	FOREIGN KEY(run_id) REFERENCES runs (id)
);
CREATE TABLE metrics (
	cell_id INTEGER NOT NULL, 
	name VARCHAR(64) NOT NULL, 
	value FLOAT NOT NULL, 
	unit VARCHAR(16) NOT NULL, 
	PRIMARY KEY (cell_id, name), 
	FOREIGN KEY(cell_id) REFERENCES cells (id)
);
INSERT INTO meta ("key", value) VALUES ('schema_version', '1');
