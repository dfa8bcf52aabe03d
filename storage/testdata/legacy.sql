-- The journey_runs table as the pre-retry system created it (SQLite), with
-- rows in every legacy status, and a column of its own (patient_ref) that
-- the store's migrations have never heard of. Written by hand, not
-- generated from the store's models.
CREATE TABLE journey_runs (
	id TEXT PRIMARY KEY,
	journey_id TEXT NOT NULL,
	status TEXT NOT NULL,
	current_node_id TEXT,
	created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
	updated_at DATETIME DEFAULT CURRENT_TIMESTAMP,
	patient_ref TEXT
);
INSERT INTO journey_runs (id, journey_id, status, current_node_id, created_at, updated_at, patient_ref) VALUES
	('legacy-1', 'onboarding', 'in_progress', 'send_email', '2024-05-01 10:00:00', '2024-05-01 10:05:00', 'p-1'),
	('legacy-2', 'onboarding', 'completed', NULL, '2024-05-01 11:00:00', '2024-05-01 11:30:00', 'p-2'),
	('legacy-3', 'reminders', 'failed', 'call_api', '2024-05-02 09:15:00', '2024-05-02 09:15:07', NULL);
