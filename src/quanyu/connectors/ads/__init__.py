"""Ads and tracking (广告投放与追踪): redirect links with campaign ids, ad cost imports, and
hashed audience lists for the ad platforms' custom audiences (人群包) and lookalikes."""
