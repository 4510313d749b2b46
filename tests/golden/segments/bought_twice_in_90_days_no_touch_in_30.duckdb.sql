SELECT
  "t6"."profile_id"
FROM (
  SELECT
    *
  FROM "profiles" AS "t0"
  WHERE
    "t0"."workspace_id" = 'ws_golden'
    AND "t0"."profile_id" IN (
      SELECT
        "t4"."profile_id"
      FROM (
        SELECT
          "t3"."profile_id",
          COUNT(*) AS "n"
        FROM (
          SELECT
            *
          FROM "person_events" AS "t1"
          WHERE
            "t1"."workspace_id" = 'ws_golden'
            AND "t1"."profile_id" IS NOT NULL
            AND "t1"."event" IN ('Order Completed')
            AND "t1"."timestamp" >= MAKE_TIMESTAMPTZ(2026, 1, 30, 0, 0, 0.0, 'UTC')
        ) AS "t3"
        GROUP BY
          1
      ) AS "t4"
      WHERE
        "t4"."n" >= 2
    )
    AND NOT (
      "t0"."profile_id" IN (
        SELECT
          "t1"."profile_id"
        FROM "person_events" AS "t1"
        WHERE
          "t1"."workspace_id" = 'ws_golden'
          AND "t1"."profile_id" IS NOT NULL
          AND "t1"."event" IN ('Message Delivered', 'Coupon Sent', 'SMS Delivered', 'WeCom Message Sent')
          AND "t1"."timestamp" >= MAKE_TIMESTAMPTZ(2026, 3, 31, 0, 0, 0.0, 'UTC')
      )
    )
) AS "t6"
