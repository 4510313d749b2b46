SELECT
  "t5"."profile_id"
FROM (
  SELECT
    *
  FROM "profiles" AS "t0"
  WHERE
    "t0"."workspace_id" = 'ws_golden'
    AND "t0"."profile_id" IN (
      SELECT
        "t3"."profile_id"
      FROM (
        SELECT
          "t2"."profile_id",
          COUNT(*) AS "n",
          AVG("t2"."amount") AS "avg",
          MIN("t2"."timestamp") AS "first_time",
          MAX("t2"."timestamp") AS "last_time"
        FROM (
          SELECT
            *
          FROM "person_events" AS "t1"
          WHERE
            "t1"."workspace_id" = 'ws_golden'
            AND "t1"."profile_id" IS NOT NULL
            AND "t1"."event" IN ('Order Completed')
        ) AS "t2"
        GROUP BY
          1
      ) AS "t3"
      WHERE
        COALESCE("t3"."avg" >= 200.0, FALSE)
        AND "t3"."first_time" < MAKE_TIMESTAMPTZ(2025, 4, 30, 0, 0, 0.0, 'UTC')
        AND COALESCE(
          (
            "t3"."last_time" >= MAKE_TIMESTAMPTZ(2025, 12, 31, 16, 0, 0.0, 'UTC')
          )
          AND (
            "t3"."last_time" < MAKE_TIMESTAMPTZ(2026, 3, 31, 16, 0, 0.0, 'UTC')
          ),
          FALSE
        )
    )
) AS "t5"
