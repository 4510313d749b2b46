SELECT
  "t7"."profile_id"
FROM (
  SELECT
    *
  FROM "profiles" AS "t0"
  WHERE
    "t0"."workspace_id" = 'ws_golden'
    AND (
      "t0"."profile_id" IN (
        SELECT
          "t3"."profile_id"
        FROM (
          SELECT
            *
          FROM "person_events" AS "t1"
          WHERE
            "t1"."workspace_id" = 'ws_golden'
            AND "t1"."profile_id" IS NOT NULL
            AND "t1"."event" IN ('Official Account Followed')
            AND (
              "t1"."properties" ->> '/scene'
            ) = 'store_qr'
            AND "t1"."store_id" IS NOT NULL
        ) AS "t3"
      )
      OR "t0"."profile_id" IN (
        SELECT
          "t4"."profile_id"
        FROM (
          SELECT
            *
          FROM "person_events" AS "t1"
          WHERE
            "t1"."workspace_id" = 'ws_golden'
            AND "t1"."profile_id" IS NOT NULL
            AND "t1"."event" IN ('QR Scanned')
            AND (
              "t1"."properties" ->> '/qr_type'
            ) = 'store'
        ) AS "t4"
      )
    )
    AND NOT (
      "t0"."profile_id" IN (
        SELECT
          "t1"."profile_id"
        FROM "person_events" AS "t1"
        WHERE
          "t1"."workspace_id" = 'ws_golden'
          AND "t1"."profile_id" IS NOT NULL
          AND "t1"."event" IN ('Order Completed')
      )
    )
) AS "t7"
