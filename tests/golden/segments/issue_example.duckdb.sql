SELECT
  "t7"."profile_id"
FROM (
  SELECT
    *
  FROM "profiles" AS "t0"
  WHERE
    "t0"."workspace_id" = 'ws_golden'
    AND COALESCE((
      "t0"."traits" ->> '/city'
    ) IN ('上海', '杭州'), FALSE)
    AND "t0"."profile_id" IN (
      SELECT
        "t5"."profile_id"
      FROM (
        SELECT
          "t4"."profile_id",
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
            AND "t1"."amount" >= 100.0
        ) AS "t4"
        GROUP BY
          1
      ) AS "t5"
      WHERE
        "t5"."n" >= 2
    )
    AND NOT (
      "t0"."profile_id" IN (
        SELECT
          "t1"."profile_id"
        FROM "person_events" AS "t1"
        WHERE
          "t1"."workspace_id" = 'ws_golden'
          AND "t1"."profile_id" IS NOT NULL
          AND "t1"."event" IN ('Message Delivered', 'Coupon Sent')
          AND "t1"."timestamp" >= MAKE_TIMESTAMPTZ(2026, 3, 31, 16, 0, 0.0, 'UTC')
          AND "t1"."timestamp" < MAKE_TIMESTAMPTZ(2026, 4, 30, 16, 0, 0.0, 'UTC')
      )
    )
    AND COALESCE(
      ARRAY_LENGTH(
        LIST_FILTER(
          "t0"."identifiers",
          LAMBDA __ibis_param_x__ : (
            __ibis_param_x__
          )."type" = 'phone'
        )
      ) > 0,
      FALSE
    )
    AND COALESCE(ARRAY_CONTAINS("t0"."tags", 'VIP'), FALSE)
    AND (
      "t0"."profile_id" IN (
        SELECT
          "t1"."profile_id"
        FROM "person_events" AS "t1"
        WHERE
          "t1"."workspace_id" = 'ws_golden'
          AND "t1"."profile_id" IS NOT NULL
          AND "t1"."event" IN ('Order Completed')
          AND "t1"."timestamp" >= MAKE_TIMESTAMPTZ(2026, 1, 30, 0, 0, 0.0, 'UTC')
      )
      OR COALESCE((
        "t0"."traits" ->> '/member_level'
      ) = 'gold', FALSE)
    )
) AS "t7"
