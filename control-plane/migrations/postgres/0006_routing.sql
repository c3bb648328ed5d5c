-- Idea routing: the network's organisations, the routing rules, and every citizen's idea with
-- its offers and its history. Plain SQL, no extension needed.
--
-- Identifiers, municipalities and categories sort bytewise (COLLATE "C"), as on SQLite, so both
-- backends list them in the same order whatever the database's locale.

-- Member organisations.
CREATE TABLE organisations (
    id             text COLLATE "C" PRIMARY KEY,
    name           text             NOT NULL,
    municipalities text[]           NOT NULL,
    categories     text[]           NOT NULL,
    contact_email  text             NOT NULL,
    contact_phone  text,
    website        text,
    description    text,
    state          text             NOT NULL CHECK (state IN ('applied', 'active', 'suspended', 'rejected')),
    created_at     timestamptz      NOT NULL,
    updated_at     timestamptz      NOT NULL,
    decided_by     text,
    note           text
);

-- Every version of the rules (a JSON `RuleSet`); the newest is in force, none is ever reused.
CREATE TABLE routing_rule_sets (
    version    bigint      PRIMARY KEY,
    rules      jsonb       NOT NULL,
    created_by text        NOT NULL,
    created_at timestamptz NOT NULL
);

-- Round-robin positions, per rule name.
CREATE TABLE routing_cursors (
    key      text COLLATE "C" PRIMARY KEY,
    position bigint           NOT NULL
);

-- Ideas. `contact` is a JSON object (NULL without one); the organisations an idea is offered to
-- now are rows of `idea_offers`.
CREATE TABLE ideas (
    id               text COLLATE "C" PRIMARY KEY,
    tracking_code    text COLLATE "C" NOT NULL,
    bench_id         text             NOT NULL,
    municipality     text COLLATE "C" NOT NULL,
    submitted_at     timestamptz      NOT NULL,
    received_at      timestamptz      NOT NULL,
    text             text             NOT NULL,
    category         text COLLATE "C" NOT NULL,
    lang             text             NOT NULL,
    contact          jsonb,
    consent          boolean          NOT NULL,
    fingerprint      text             NOT NULL,
    duplicate_of     text COLLATE "C",
    state            text             NOT NULL,
    org_id           text COLLATE "C",
    excluded         text[]           NOT NULL,
    attempts         integer          NOT NULL,
    rule             text,
    rule_version     bigint,
    confirm_within_s bigint,
    act_within_s     bigint,
    deadline         timestamptz,
    flag             text,
    updated_at       timestamptz      NOT NULL,
    confirmed_at     timestamptz,
    completed_at     timestamptz
);

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
    idea_id  text COLLATE "C" NOT NULL REFERENCES ideas (id) ON DELETE CASCADE,
    org_id   text COLLATE "C" NOT NULL,
    position integer          NOT NULL,
    PRIMARY KEY (idea_id, org_id)
);

CREATE INDEX idea_offers_org ON idea_offers (org_id);

-- Every step of every idea's lifecycle, appended only.
CREATE TABLE idea_events (
    id            bigint           GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    idea_id       text COLLATE "C" NOT NULL,
    at            timestamptz      NOT NULL,
    actor         text             NOT NULL,
    action        text             NOT NULL,
    from_state    text,
    to_state      text             NOT NULL,
    org_id        text COLLATE "C",
    public_note   text,
    internal_note text
);

CREATE INDEX idea_events_idea ON idea_events (idea_id, id);

-- The last tracking number handed out per code prefix (`MOS-2026`).
CREATE TABLE idea_codes (
    prefix text   PRIMARY KEY,
    last   bigint NOT NULL
);

-- Operators' decisions about the network itself, with the details in `detail`.
CREATE TABLE routing_audit (
    id      bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      timestamptz NOT NULL,
    actor   text        NOT NULL,
    action  text        NOT NULL,
    subject text        NOT NULL,
    detail  jsonb       NOT NULL
);
