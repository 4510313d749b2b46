SELECT
  `t7`.`profile_id`
FROM (
  SELECT
    *
  FROM `profiles` AS `t0`
  WHERE
    `t0`.`workspace_id` = 'ws_golden'
    AND `t0`.`profile_id` IN (
      SELECT
        `t4`.`pid`
      FROM (
        SELECT
          `t1`.`profile_id` AS `pid`,
          `t1`.`timestamp` AS `at`
        FROM `person_events` AS `t1`
        WHERE
          `t1`.`workspace_id` = 'ws_golden'
          AND `t1`.`profile_id` IS NOT NULL
          AND `t1`.`event` IN ('Product Added')
          AND `t1`.`timestamp` >= CAST('2026-03-31T00:00:00+00:00' AS TIMESTAMP)
          AND `t1`.`timestamp` <= CAST('2026-04-27T00:00:00+00:00' AS TIMESTAMP)
      ) AS `t4`
      LEFT ANTI JOIN (
        SELECT
          `t1`.`profile_id` AS `pid`,
          `t1`.`timestamp` AS `at`
        FROM `person_events` AS `t1`
        WHERE
          `t1`.`workspace_id` = 'ws_golden'
          AND `t1`.`profile_id` IS NOT NULL
          AND `t1`.`event` IN ('Order Completed')
          AND `t1`.`timestamp` >= CAST('2026-03-31T00:00:00+00:00' AS TIMESTAMP)
      ) AS `t5`
        ON `t4`.`pid` = `t5`.`pid`
        AND `t5`.`at` > `t4`.`at`
        AND `t5`.`at` <= (
          `t4`.`at` + INTERVAL '259200' SECOND
        )
    )
) AS `t7`
