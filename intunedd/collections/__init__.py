"""The Scraping Pros-compatible collections API: scrape requests, collections, runs and their jobs."""
