/** The S3 model repository: Triton's layout in a bucket, versions fetched into a verified local cache. */
package io.quiver.registry.s3;
