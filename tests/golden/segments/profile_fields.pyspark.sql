SELECT
  `t1`.`profile_id`
FROM (
  SELECT
    *
  FROM `profiles` AS `t0`
  WHERE
    `t0`.`workspace_id` = 'ws_golden'
    AND (
      COALESCE((
        `t0`.`revenue` >= 100.0
      ) AND (
        `t0`.`revenue` <= 500.0
      ), FALSE)
      OR (
        NOT (
          COALESCE(
            (
              `t0`.`last_purchase_at` >= CAST('2026-02-28T16:00:00+00:00' AS TIMESTAMP)
            )
            AND (
              `t0`.`last_purchase_at` < CAST('2026-03-31T16:00:00+00:00' AS TIMESTAMP)
            ),
            FALSE
          )
        )
        AND (
          `t0`.`last_purchase_at` IS NOT NULL
        )
      )
      OR COALESCE(
        (
          EXTRACT(month FROM TRY_CAST(JSON_EXTRACT_STRING(`t0`.`traits`, '/birthday') AS DATE)) * 100
        ) + EXTRACT(day FROM TRY_CAST(JSON_EXTRACT_STRING(`t0`.`traits`, '/birthday') AS DATE)) IN (430, 501, 502, 503, 504, 505, 506, 507),
        FALSE
      )
      OR NOT (
        COALESCE(SIZE(ARRAY_INTERSECT(`t0`.`channels`, ARRAY('pos', 'jd'))) > 0, FALSE)
      )
      OR COALESCE(
        SIZE(
          FILTER(
            `t0`.`identifiers`,
            __ibis_param_x__ -> (
              __ibis_param_x__.`type` = 'phone'
            )
            AND (
              __ibis_param_x__.`value` = '13800001111'
            )
          )
        ) > 0,
        FALSE
      )
      OR COALESCE(
        IF(
          `t0`.`reachable_channels` IS NULL,
          NULL,
          COALESCE(ARRAY_CONTAINS(`t0`.`reachable_channels`, 'wecom'), FALSE)
        ),
        FALSE
      )
      OR COALESCE(
        NOT (
          JSON_EXTRACT_STRING(`t0`.`traits`, '/city') = 'x\'; DROP TABLE profiles; --'
        ),
        TRUE
      )
    )
) AS `t1`
