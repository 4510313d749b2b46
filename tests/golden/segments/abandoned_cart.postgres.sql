SELECT
  "t7"."profile_id"
FROM (
  SELECT
    *
  FROM "profiles" AS "t0"
  WHERE
    "t0"."workspace_id" = 'ws_golden'
    AND "t0"."profile_id" IN (
      SELECT
        "t5"."pid"
      FROM (
        SELECT
          "t1"."profile_id" AS "pid",
          "t1"."timestamp" AS "at"
        FROM "person_events" AS "t1"
        WHERE
          "t1"."workspace_id" = 'ws_golden'
          AND "t1"."profile_id" IS NOT NULL
          AND "t1"."event" IN ('Product Added')
          AND COALESCE("t1"."timestamp" >= CAST('2026-03-31T00:00:00+00:00' AS TIMESTAMPTZ), FALSE)
          AND (
            "t1"."timestamp" + INTERVAL '259200 SECOND'
          ) <= CAST('2026-04-30T00:00:00+00:00' AS TIMESTAMPTZ)
      ) AS "t5"
      WHERE
        NOT EXISTS(
          SELECT
            1
          FROM (
            SELECT
              "t1"."profile_id" AS "pid",
              "t1"."timestamp" AS "at"
            FROM "person_events" AS "t1"
            WHERE
              "t1"."workspace_id" = 'ws_golden'
              AND "t1"."profile_id" IS NOT NULL
              AND "t1"."event" IN ('Order Completed')
          ) AS "t4"
          WHERE
            "t5"."pid" = "t4"."pid"
            AND "t4"."at" > "t5"."at"
            AND "t4"."at" <= (
              "t5"."at" + INTERVAL '259200 SECOND'
            )
        )
    )
) AS "t7"
