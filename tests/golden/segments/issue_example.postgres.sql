SELECT
  "t7"."profile_id"
FROM (
  SELECT
    *
  FROM "profiles" AS "t0"
  WHERE
    "t0"."workspace_id" = 'ws_golden'
    AND COALESCE(JSON_EXTRACT_STRING("t0"."traits", '/city') IN ('上海', '杭州'), FALSE)
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
            AND "t1"."timestamp" >= CAST('2026-01-30T00:00:00+00:00' AS TIMESTAMPTZ)
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
          AND "t1"."timestamp" >= CAST('2026-03-31T16:00:00+00:00' AS TIMESTAMPTZ)
          AND "t1"."timestamp" < CAST('2026-04-30T16:00:00+00:00' AS TIMESTAMPTZ)
      )
    )
    AND COALESCE(
      CARDINALITY(
        ARRAY(SELECT
          __ibis_param_x__
        FROM UNNEST("t0"."identifiers") AS __ibis_param_x__
        WHERE
          CAST(JSONB_EXTRACT_PATH(TO_JSONB(__ibis_param_x__), 'f1') AS VARCHAR) = 'phone')
      ) > 0,
      FALSE
    )
    AND COALESCE(CAST("t0"."tags" AS VARCHAR[]) @> ARRAY[CAST('VIP' AS VARCHAR)], FALSE)
    AND (
      "t0"."profile_id" IN (
        SELECT
          "t1"."profile_id"
        FROM "person_events" AS "t1"
        WHERE
          "t1"."workspace_id" = 'ws_golden'
          AND "t1"."profile_id" IS NOT NULL
          AND "t1"."event" IN ('Order Completed')
          AND "t1"."timestamp" >= CAST('2026-01-30T00:00:00+00:00' AS TIMESTAMPTZ)
      )
      OR COALESCE(JSON_EXTRACT_STRING("t0"."traits", '/member_level') = 'gold', FALSE)
    )
) AS "t7"
