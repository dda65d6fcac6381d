package io.quiver.cache;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import org.junit.jupiter.api.Test;

class CacheOptionsTest {
  @Test
  void none_whenNotGiven() {
    assertThat(CacheOptions.parse(List.of())).isNull();
  }

  @Test
  void local_withTritonsSizeKey_andSuffixes() {
    CacheOptions local = CacheOptions.parse(List.of("local,size=1048576"));
    assertThat(local.kind()).isEqualTo(CacheOptions.Kind.LOCAL);
    assertThat(local.localSizeBytes()).isEqualTo(1 << 20);
    assertThat(local.maxEntryBytes()).isEqualTo(1 << 16); // a sixteenth of the cache
    assertThat(CacheOptions.parse(List.of("local,size=256M")).localSizeBytes()).isEqualTo(256L << 20);
    assertThat(CacheOptions.parse(List.of("local")).localSizeBytes()).isEqualTo(CacheOptions.DEFAULT_LOCAL_SIZE_BYTES);
  }

  @Test
  void redis_inOneArgument_orOneKeyPerArgumentAsTritonWritesIt() {
    CacheOptions one = CacheOptions.parse(List.of("redis,host=cache.svc,port=6380,ttl_secs=60,socket_timeout=5,key_prefix=q:"));
    CacheOptions many = CacheOptions.parse(List.of("redis,host=cache.svc", "redis,port=6380", "redis,ttl_secs=60",
        "redis,socket_timeout=5", "redis,key_prefix=q:"));
    assertThat(many).isEqualTo(one);
    assertThat(one.redis().host()).isEqualTo("cache.svc");
    assertThat(one.redis().port()).isEqualTo(6380);
    assertThat(one.redis().ttlSeconds()).isEqualTo(60);
    assertThat(one.redis().timeoutMillis()).isEqualTo(5);
    assertThat(one.redis().keyPrefix()).isEqualTo("q:");
    assertThat(CacheOptions.parse(List.of("redis,password=secret")).toString()).doesNotContain("secret");
  }

  @Test
  void mistakes_areNamed() {
    assertThatThrownBy(() -> CacheOptions.parse(List.of("memcached,size=1"))).hasMessageContaining("'local' or 'redis'");
    assertThatThrownBy(() -> CacheOptions.parse(List.of("local,size=1M", "redis,host=x")))
        .hasMessageContaining("names two caches");
    assertThatThrownBy(() -> CacheOptions.parse(List.of("local,sise=1M"))).hasMessageContaining("'sise' is not a key of the local cache");
    assertThatThrownBy(() -> CacheOptions.parse(List.of("local,size=lots"))).hasMessageContaining("size must be a byte count");
    assertThatThrownBy(() -> CacheOptions.parse(List.of("local,size=10"))).hasMessageContaining("size must be between");
    assertThatThrownBy(() -> CacheOptions.parse(List.of("redis,port=99999"))).hasMessageContaining("port must be between 1 and 65535");
    assertThatThrownBy(() -> CacheOptions.parse(List.of("redis,port=1", "redis,port=2"))).hasMessageContaining("'port' is given twice");
    assertThatThrownBy(() -> CacheOptions.parse(List.of("redis,cert_path=/c.pem,key_path=/k.pem")))
        .hasMessageContaining("need tls_enabled=true");
    assertThatThrownBy(() -> CacheOptions.parse(List.of("redis,host"))).hasMessageContaining("'host' is not key=value");
  }
}
