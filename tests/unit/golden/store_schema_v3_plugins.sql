-- A schema-3 store written by benchmatrix at 70d2e2c: one run of a plugin model (examples/plugins, checked out at
-- /work/main), its cells hashed by the plugin folder's absolute path. Migration 4 rehashes them by content.
BEGIN TRANSACTION;
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
	data_provenance TEXT, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_cell_identity UNIQUE (run_id, config_hash, repeat), 
	FOREIGN KEY(run_id) REFERENCES runs (id)
);
INSERT INTO "cells" VALUES(1,'20261201-100000-aaaaaa','810f3673b7909227',0,'cpu','mxnet','1.9.1','cpu','p','mnist_mlp','mnist',128,1,'{}','{"batch_size": 128, "config_hash": "810f3673b7909227", "cpuset": null, "dataset": "mnist", "device_ids": null, "epochs": 1, "framework": "mxnet", "generated_samples": null, "gpus": 0, "image": "benchmatrix/mxnet:1.9.1-cpu", "lr": 0.001, "max_samples": 256, "memory": null, "model": "mnist_mlp", "optimizer": "adam", "options": [], "plugins": ["/work/main/examples/plugins"], "repeat": 0, "system": "cpu", "system_kind": "cpu", "timeout_s": 1800, "variant": "cpu", "version": "1.9.1", "warmup_steps": 10, "workload": "p"}','benchmatrix/mxnet:1.9.1-cpu','sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa','ok',0,'2026-12-01 10:00:00.000000','2026-12-01 10:00:00.000000',NULL,NULL,'{"mxnet": "1.9.1"}','[]',NULL,NULL);
INSERT INTO "cells" VALUES(2,'20261201-100000-aaaaaa','810f3673b7909227',1,'cpu','mxnet','1.9.1','cpu','p','mnist_mlp','mnist',128,1,'{}','{"batch_size": 128, "config_hash": "810f3673b7909227", "cpuset": null, "dataset": "mnist", "device_ids": null, "epochs": 1, "framework": "mxnet", "generated_samples": null, "gpus": 0, "image": "benchmatrix/mxnet:1.9.1-cpu", "lr": 0.001, "max_samples": 256, "memory": null, "model": "mnist_mlp", "optimizer": "adam", "options": [], "plugins": ["/work/main/examples/plugins"], "repeat": 1, "system": "cpu", "system_kind": "cpu", "timeout_s": 1800, "variant": "cpu", "version": "1.9.1", "warmup_steps": 10, "workload": "p"}','benchmatrix/mxnet:1.9.1-cpu','sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa','ok',0,'2026-12-01 10:00:00.000000','2026-12-01 10:00:00.000000',NULL,NULL,'{"mxnet": "1.9.1"}','[]',NULL,NULL);
CREATE TABLE meta (
	"key" VARCHAR(64) NOT NULL, 
	value TEXT NOT NULL, 
	PRIMARY KEY ("key")
);
INSERT INTO "meta" VALUES('schema_version','3');
CREATE TABLE metrics (
	cell_id INTEGER NOT NULL, 
	name VARCHAR(64) NOT NULL, 
	value FLOAT NOT NULL, 
	unit VARCHAR(16) NOT NULL, 
	PRIMARY KEY (cell_id, name), 
	FOREIGN KEY(cell_id) REFERENCES cells (id)
);
INSERT INTO "metrics" VALUES(1,'train_img_per_s',1000.0,'img/s');
INSERT INTO "metrics" VALUES(2,'train_img_per_s',1001.0,'img/s');
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
INSERT INTO "runs" VALUES('20261201-100000-aaaaaa','2026-12-02 00:53:10.579439',NULL,'running','plugins','/tmp/w19e-gen/spec.yaml','h','mxnet','cpu','[]','0.1.0','{}');
CREATE INDEX ix_runs_started_at ON runs (started_at);
CREATE INDEX ix_cells_run_id ON cells (run_id);
CREATE INDEX ix_cells_build ON cells (framework, version, variant);
CREATE INDEX ix_cells_config_hash ON cells (config_hash);
COMMIT;
