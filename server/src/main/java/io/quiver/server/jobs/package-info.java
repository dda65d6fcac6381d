/**
 * Batch prediction jobs: a file of records (JSON Lines of KServe v2 requests, or an Arrow IPC table)
 * on a local path or in S3, scored through the same data-plane path as online requests at background
 * priority, with results written in atomically committed chunks that a restarted server resumes
 * (docs/batch-jobs.md).
 */
package io.quiver.server.jobs;
