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
              "t0"."last_purchase_at" >= MAKE_TIMESTAMPTZ(2026, 2, 28, 16, 0, 0.0, 'UTC')
            )
            AND (
              "t0"."last_purchase_at" < MAKE_TIMESTAMPTZ(2026, 3, 31, 16, 0, 0.0, 'UTC')
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
          EXTRACT(month FROM TRY_CAST("t0"."traits" ->> '/birthday' AS DATE)) * 100
        ) + EXTRACT(day FROM TRY_CAST("t0"."traits" ->> '/birthday' AS DATE)) IN (430, 501, 502, 503, 504, 505, 506, 507),
        FALSE
      )
      OR NOT (
        COALESCE(
          ARRAY_LENGTH(LIST_FILTER("t0"."channels", LAMBDA x : ARRAY_CONTAINS(['pos', 'jd'], x))) > 0,
          FALSE
        )
      )
      OR COALESCE(
        ARRAY_LENGTH(
          LIST_FILTER(
            "t0"."identifiers",
            LAMBDA __ibis_param_x__ : (
              (
                __ibis_param_x__
              )."type" = 'phone'
            )
            AND (
              (
                __ibis_param_x__
              )."value" = '13800001111'
            )
          )
        ) > 0,
        FALSE
      )
      OR COALESCE(ARRAY_CONTAINS("t0"."reachable_channels", 'wecom'), FALSE)
      OR COALESCE(
        NOT (
          (
            "t0"."traits" ->> '/city'
          ) = 'x''; DROP TABLE profiles; --'
        ),
        TRUE
      )
    )
) AS "t1"
