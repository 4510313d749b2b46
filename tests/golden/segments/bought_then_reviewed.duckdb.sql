SELECT
  "t14"."profile_id"
FROM (
  SELECT
    *
  FROM "profiles" AS "t0"
  WHERE
    "t0"."workspace_id" = 'ws_golden'
    AND "t0"."profile_id" IN (
      SELECT
        "t12"."pid"
      FROM (
        SELECT DISTINCT
          *
        FROM (
          SELECT
            "t10"."pid",
            "t5"."at"
          FROM (
            SELECT DISTINCT
              *
            FROM (
              SELECT
                "t6"."pid",
                "t7"."at"
              FROM (
                SELECT DISTINCT
                  "t1"."profile_id" AS "pid",
                  "t1"."timestamp" AS "at"
                FROM "person_events" AS "t1"
                WHERE
                  "t1"."workspace_id" = 'ws_golden'
                  AND "t1"."profile_id" IS NOT NULL
                  AND "t1"."event" IN ('Order Completed')
                  AND "t1"."channel" IN ('tmall')
              ) AS "t6"
              INNER JOIN (
                SELECT
                  "t1"."profile_id" AS "pid",
                  "t1"."timestamp" AS "at"
                FROM "person_events" AS "t1"
                WHERE
                  "t1"."workspace_id" = 'ws_golden'
                  AND "t1"."profile_id" IS NOT NULL
                  AND "t1"."type" = 'page'
                  AND "t1"."name" IN ('/review')
              ) AS "t7"
                ON "t6"."pid" = "t7"."pid"
                AND "t7"."at" > "t6"."at"
                AND "t7"."at" <= (
                  "t6"."at" + INTERVAL '1209600' SECOND
                )
            ) AS "t8"
          ) AS "t10"
          INNER JOIN (
            SELECT
              "t1"."profile_id" AS "pid",
              "t1"."timestamp" AS "at"
            FROM "person_events" AS "t1"
            WHERE
              "t1"."workspace_id" = 'ws_golden'
              AND "t1"."profile_id" IS NOT NULL
              AND "t1"."event" IN ('Review Submitted')
          ) AS "t5"
            ON "t10"."pid" = "t5"."pid"
            AND "t5"."at" > "t10"."at"
            AND "t5"."at" <= (
              "t10"."at" + INTERVAL '1209600' SECOND
            )
        ) AS "t11"
      ) AS "t12"
    )
) AS "t14"
