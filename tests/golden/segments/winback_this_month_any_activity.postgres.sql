SELECT
  "t5"."profile_id"
FROM (
  SELECT
    *
  FROM "profiles" AS "t0"
  WHERE
    "t0"."workspace_id" = 'ws_golden'
    AND NOT (
      "t0"."profile_id" IN (
        SELECT
          "t1"."profile_id"
        FROM "person_events" AS "t1"
        WHERE
          "t1"."workspace_id" = 'ws_golden'
          AND "t1"."profile_id" IS NOT NULL
          AND "t1"."type" = 'track'
          AND "t1"."timestamp" >= CAST('2026-03-31T16:00:00+00:00' AS TIMESTAMPTZ)
          AND "t1"."timestamp" < CAST('2026-04-30T16:00:00+00:00' AS TIMESTAMPTZ)
      )
      OR "t0"."profile_id" IN (
        SELECT
          "t1"."profile_id"
        FROM "person_events" AS "t1"
        WHERE
          "t1"."workspace_id" = 'ws_golden'
          AND "t1"."profile_id" IS NOT NULL
          AND "t1"."type" = 'page'
          AND "t1"."timestamp" >= CAST('2026-03-31T16:00:00+00:00' AS TIMESTAMPTZ)
          AND "t1"."timestamp" < CAST('2026-04-30T16:00:00+00:00' AS TIMESTAMPTZ)
      )
      OR "t0"."profile_id" IN (
        SELECT
          "t1"."profile_id"
        FROM "person_events" AS "t1"
        WHERE
          "t1"."workspace_id" = 'ws_golden'
          AND "t1"."profile_id" IS NOT NULL
          AND "t1"."type" = 'screen'
          AND "t1"."timestamp" >= CAST('2026-03-31T16:00:00+00:00' AS TIMESTAMPTZ)
          AND "t1"."timestamp" < CAST('2026-04-30T16:00:00+00:00' AS TIMESTAMPTZ)
      )
    )
) AS "t5"
