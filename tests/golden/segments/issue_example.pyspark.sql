SELECT
  `t7`.`profile_id`
FROM (
  SELECT
    *
  FROM `profiles` AS `t0`
  WHERE
    `t0`.`workspace_id` = 'ws_golden'
    AND COALESCE(JSON_EXTRACT_STRING(`t0`.`traits`, '/city') IN ('上海', '杭州'), FALSE)
    AND `t0`.`profile_id` IN (
      SELECT
        `t5`.`profile_id`
      FROM (
        SELECT
          `t4`.`profile_id`,
          COUNT(*) AS `n`
        FROM (
          SELECT
            *
          FROM `person_events` AS `t1`
          WHERE
            `t1`.`workspace_id` = 'ws_golden'
            AND `t1`.`profile_id` IS NOT NULL
            AND `t1`.`event` IN ('Order Completed')
            AND `t1`.`timestamp` >= CAST('2026-01-30T00:00:00+00:00' AS TIMESTAMP)
            AND `t1`.`amount` >= 100.0
        ) AS `t4`
        GROUP BY
          1
      ) AS `t5`
      WHERE
        `t5`.`n` >= 2
    )
    AND NOT (
      `t0`.`profile_id` IN (
        SELECT
          `t1`.`profile_id`
        FROM `person_events` AS `t1`
        WHERE
          `t1`.`workspace_id` = 'ws_golden'
          AND `t1`.`profile_id` IS NOT NULL
          AND `t1`.`event` IN ('Message Delivered', 'Coupon Sent')
          AND `t1`.`timestamp` >= CAST('2026-03-31T16:00:00+00:00' AS TIMESTAMP)
          AND `t1`.`timestamp` < CAST('2026-04-30T16:00:00+00:00' AS TIMESTAMP)
      )
    )
    AND COALESCE(
      SIZE(
        FILTER(`t0`.`identifiers`, __ibis_param_x__ -> __ibis_param_x__.`type` = 'phone')
      ) > 0,
      FALSE
    )
    AND COALESCE(
      IF(`t0`.`tags` IS NULL, NULL, COALESCE(ARRAY_CONTAINS(`t0`.`tags`, 'VIP'), FALSE)),
      FALSE
    )
    AND (
      `t0`.`profile_id` IN (
        SELECT
          `t1`.`profile_id`
        FROM `person_events` AS `t1`
        WHERE
          `t1`.`workspace_id` = 'ws_golden'
          AND `t1`.`profile_id` IS NOT NULL
          AND `t1`.`event` IN ('Order Completed')
          AND `t1`.`timestamp` >= CAST('2026-01-30T00:00:00+00:00' AS TIMESTAMP)
      )
      OR COALESCE(JSON_EXTRACT_STRING(`t0`.`traits`, '/member_level') = 'gold', FALSE)
    )
) AS `t7`
