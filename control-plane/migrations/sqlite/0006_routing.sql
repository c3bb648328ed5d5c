-- Idea routing: the network's organisations, the routing rules, and every citizen's idea with
-- its offers and its history. Times are unix milliseconds; JSON is TEXT.

-- Member organisations. `municipalities` and `categories` are JSON arrays of strings.
CREATE TABLE organisations (
    id             TEXT    PRIMARY KEY,
    name           TEXT    NOT NULL,
    municipalities TEXT    NOT NULL,
    categories     TEXT    NOT NULL,
    contact_email  TEXT    NOT NULL,
    contact_phone  TEXT,
    website        TEXT,
    description    TEXT,
    state          TEXT    NOT NULL CHECK (state IN ('applied', 'active', 'suspended', 'rejected')),
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    decided_by     TEXT,
    note           TEXT
) STRICT;

-- Every version of the rules (a JSON `RuleSet`); the newest is in force, none is ever reused.
CREATE TABLE routing_rule_sets (
    version    INTEGER PRIMARY KEY,
    rules      TEXT    NOT NULL,
    created_by TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- Round-robin positions, per rule name.
CREATE TABLE routing_cursors (
    key      TEXT    PRIMARY KEY,
    position INTEGER NOT NULL
) STRICT;

-- Ideas. `contact` is a JSON object (NULL without one), `excluded` a JSON array of organisation
-- ids; the organisations an idea is offered to now are rows of `idea_offers`.
CREATE TABLE ideas (
    id               TEXT    PRIMARY KEY,
    tracking_code    TEXT    NOT NULL,
    bench_id         TEXT    NOT NULL,
    municipality     TEXT    NOT NULL,
    submitted_at     INTEGER NOT NULL,
    received_at      INTEGER NOT NULL,
    text             TEXT    NOT NULL,
    category         TEXT    NOT NULL,
    lang             TEXT    NOT NULL,
    contact          TEXT,
    consent          INTEGER NOT NULL,
    fingerprint      TEXT    NOT NULL,
    duplicate_of     TEXT,
    state            TEXT    NOT NULL,
    org_id           TEXT,
    excluded         TEXT    NOT NULL,
    attempts         INTEGER NOT NULL,
    rule             TEXT,
    rule_version     INTEGER,
    confirm_within_s INTEGER,
    act_within_s     INTEGER,
    deadline         INTEGER,
    flag             TEXT,
    updated_at       INTEGER NOT NULL,
    confirmed_at     INTEGER,
    completed_at     INTEGER
) STRICT;

CREATE UNIQUE INDEX ideas_tracking_code ON ideas (tracking_code);
-- Newest-first listing and its keyset paging.
CREATE INDEX ideas_received ON ideas (received_at, id);
-- Queues by state; the partial index serves the timer's "deadline passed" scan.
CREATE INDEX ideas_state_deadline ON ideas (state, deadline);
CREATE INDEX ideas_deadline ON ideas (deadline) WHERE deadline IS NOT NULL;
CREATE INDEX ideas_fingerprint ON ideas (fingerprint);
CREATE INDEX ideas_org ON ideas (org_id) WHERE org_id IS NOT NULL;

-- The organisations an idea is offered to now, replaced with every write of the idea;
-- `position` keeps the order they were offered in.
CREATE TABLE idea_offers (
    idea_id  TEXT    NOT NULL REFERENCES ideas (id) ON DELETE CASCADE,
    org_id   TEXT    NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (idea_id, org_id)
) STRICT;

CREATE INDEX idea_offers_org ON idea_offers (org_id);

-- Every step of every idea's lifecycle, appended only.
CREATE TABLE idea_events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    idea_id       TEXT    NOT NULL,
    at            INTEGER NOT NULL,
    actor         TEXT    NOT NULL,
    action        TEXT    NOT NULL,
    from_state    TEXT,
    to_state      TEXT    NOT NULL,
    org_id        TEXT,
    public_note   TEXT,
    internal_note TEXT
) STRICT;

CREATE INDEX idea_events_idea ON idea_events (idea_id, id);

-- The last tracking number handed out per code prefix (`MOS-2026`).
CREATE TABLE idea_codes (
    prefix TEXT    PRIMARY KEY,
    last   INTEGER NOT NULL
) STRICT;

-- Operators' decisions about the network itself, with the details in `detail` (JSON).
CREATE TABLE routing_audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    actor   TEXT    NOT NULL,
    action  TEXT    NOT NULL,
    subject TEXT    NOT NULL,
    detail  TEXT    NOT NULL
) STRICT;
