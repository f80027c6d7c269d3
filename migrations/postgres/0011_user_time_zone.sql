-- A user's own time zone for the pages (an IANA name such as Asia/Seoul).
ALTER TABLE users ADD COLUMN time_zone TEXT;
