-- The table the compose file's SQL connector (HR) provisions into.
CREATE TABLE users (
    "AzureObjectID" text PRIMARY KEY,
    "UserName"      text NOT NULL,
    "DisplayName"   text,
    "Email"         text,
    "IsActive"      boolean NOT NULL DEFAULT true
);
