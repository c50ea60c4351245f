// KeyStore: the durable state of cloister-kms in SQLite (WAL, synchronous=FULL): keys (metadata,
// policy text, key material sealed under the master key), their tags, and aliases.
//
// The schema carries a version (PRAGMA user_version). Open migrates an older database in one
// transaction and keeps its data: version 0 (keys, aliases) -> 1 (adds tags). A database newer
// than this code is refused.
//
// Every mutating call returns only after SQLite has committed it durably, so an answer sent
// after it survives kill -9. Key material never reaches the database in the clear: it is sealed
// with AES-256-GCM under the master key (kept outside the database) with the key id as AAD.
//
// Thread safety: all methods are thread-safe (one connection behind a mutex).
#ifndef CLOISTER_KMS_KEY_STORE_H_
#define CLOISTER_KMS_KEY_STORE_H_

#include <sqlite3.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/secret.h"

namespace cloister::kms {

// A key's metadata and policy as stored.
struct KeyRow {
  std::string key_id;
  std::string account;
  std::string region;
  std::string description;
  std::string state;  // Enabled, Disabled, PendingDeletion
  std::string policy;
  int64_t creation_ms = 0;
  int64_t deletion_ms = 0;  // when PendingDeletion: the scheduled deletion time
  std::map<std::string, std::string> tags;  // TagKey -> TagValue
};

struct StoredKey {
  KeyRow row;
  SecretBytes material;
};

struct AliasRow {
  std::string name;  // alias/...
  std::string key_id;
  std::string account;
  int64_t creation_ms = 0;
  int64_t updated_ms = 0;
};

struct SqliteCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};

// The schema version this code writes.
inline constexpr int kKeyStoreSchemaVersion = 1;

class KeyStore {
 public:
  // Opens (creating if needed) `<dir>/keys.db`. kIo if SQLite refuses.
  static Result<std::unique_ptr<KeyStore>> Open(const std::string& dir, SecretBytes master_key);

  // Returns every key (material unsealed) and alias. kInternal if a key fails to unseal (wrong
  // master key or a corrupted row).
  Result<std::vector<StoredKey>> LoadKeys();
  Result<std::vector<AliasRow>> LoadAliases();

  // Durably inserts a new key with its tags. kInvalidArgument if the id exists.
  Status InsertKey(const KeyRow& row, const SecretBytes& material);
  // Durably updates a key's state, deletion time, description and policy (not its tags).
  Status UpdateKey(const KeyRow& row);
  // Durably replaces the tags of key `key_id` with `tags` (one transaction).
  Status ReplaceTags(const std::string& key_id, const std::map<std::string, std::string>& tags);
  Status InsertAlias(const AliasRow& row);
  Status DeleteAlias(const std::string& account, const std::string& name);
  // Deletes a key and its aliases (after its deletion date).
  Status DeleteKey(const std::string& key_id);

 private:
  KeyStore(std::unique_ptr<sqlite3, SqliteCloser> db, SecretBytes master_key)
      : db_(std::move(db)), master_key_(std::move(master_key)) {}
  Status Exec(const char* sql);
  Status Migrate();
  // Inserts `tags` for `key_id`; the caller holds mu_ and a transaction.
  Status InsertTagsLocked(const std::string& key_id, const std::map<std::string, std::string>& tags);

  std::mutex mu_;
  std::unique_ptr<sqlite3, SqliteCloser> db_;
  SecretBytes master_key_;
};

// Loads the master key: from file descriptor `fd` (32 raw bytes) when fd >= 0, else from
// `<dir>/master.key`, creating it (0600, 32 random bytes) on first start. Refuses a key file
// readable by group or others. kIo / kInvalidArgument on failure.
Result<SecretBytes> LoadOrCreateMasterKey(const std::string& dir, int fd);

}  // namespace cloister::kms

#endif  // CLOISTER_KMS_KEY_STORE_H_
