SELECT
  "t1"."profile_id"
FROM (
  SELECT
    *
  FROM "profiles" AS "t0"
  WHERE
    "t0"."workspace_id" = 'ws_golden'
    AND (
      COALESCE((
        "t0"."revenue" >= 100.0
      ) AND (
        "t0"."revenue" <= 500.0
      ), FALSE)
      OR (
        NOT (
          COALESCE(
            (
              "t0"."last_purchase_at" >= CAST('2026-02-28T16:00:00+00:00' AS TIMESTAMPTZ)
            )
            AND (
              "t0"."last_purchase_at" < CAST('2026-03-31T16:00:00+00:00' AS TIMESTAMPTZ)
            ),
            FALSE
          )
        )
        AND (
          "t0"."last_purchase_at" IS NOT NULL
        )
      )
      OR COALESCE(
        (
          EXTRACT(month FROM CAST(JSON_EXTRACT_STRING("t0"."traits", '/birthday') AS DATE)) * 100
        ) + EXTRACT(day FROM CAST(JSON_EXTRACT_STRING("t0"."traits", '/birthday') AS DATE)) IN (430, 501, 502, 503, 504, 505, 506, 507),
        FALSE
      )
      OR NOT (
        COALESCE(
          CARDINALITY(
            ARRAY(SELECT
              UNNEST("t0"."channels")
            INTERSECT
            SELECT
              UNNEST(ARRAY['pos', 'jd']))
          ) > 0,
          FALSE
        )
      )
      OR COALESCE(
        CARDINALITY(
          ARRAY(SELECT
            __ibis_param_x__
          FROM UNNEST("t0"."identifiers") AS __ibis_param_x__
          WHERE
            (
              CAST(JSONB_EXTRACT_PATH(TO_JSONB(__ibis_param_x__), 'f1') AS VARCHAR) = 'phone'
            )
            AND (
              CAST(JSONB_EXTRACT_PATH(TO_JSONB(__ibis_param_x__), 'f2') AS VARCHAR) = '13800001111'
            ))
        ) > 0,
        FALSE
      )
      OR COALESCE(
        CAST("t0"."reachable_channels" AS VARCHAR[]) @> ARRAY[CAST('wecom' AS VARCHAR)],
        FALSE
      )
      OR COALESCE(
        NOT (
          JSON_EXTRACT_STRING("t0"."traits", '/city') = 'x''; DROP TABLE profiles; --'
        ),
        TRUE
      )
    )
) AS "t1"
