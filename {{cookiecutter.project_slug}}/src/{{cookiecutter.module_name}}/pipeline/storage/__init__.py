"""The cache: one folder per task result, on this disk or shared on S3, written durably."""
