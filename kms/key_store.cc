#include "kms/key_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include <map>

#include "common/file.h"
#include "common/io.h"
#include "common/unique_fd.h"
#include "kms/ciphertext.h"

namespace cloister::kms {
namespace {

struct StmtCloser {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtCloser>;

constexpr std::string_view kMaterialAadPrefix = "cloister-kms key material v1:";

Error SqlError(sqlite3* db, std::string_view what) {
  return Error::Io(std::string(what) + ": " + sqlite3_errmsg(db));
}

Result<StmtPtr> Prepare(sqlite3* db, const char* sql) {
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(db, sql, -1, &raw, nullptr);
  StmtPtr stmt(raw);
  if (rc != SQLITE_OK) return SqlError(db, "prepare");
  return stmt;
}

void BindText(sqlite3_stmt* s, int i, const std::string& v) {
  sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}

std::string ColumnText(sqlite3_stmt* s, int i) {
  const unsigned char* p = sqlite3_column_text(s, i);
  return p == nullptr ? std::string()
                      : std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(s, i));
}

Bytes MaterialAad(const std::string& key_id) {
  return ToBytes(std::string(kMaterialAadPrefix) + key_id);
}

Status StepDone(sqlite3* db, sqlite3_stmt* s) {
  int rc = sqlite3_step(s);
  if (rc == SQLITE_CONSTRAINT) return Error::InvalidArgument("already exists");
  if (rc != SQLITE_DONE) return SqlError(db, "step");
  return OkStatus();
}

}  // namespace

Result<std::unique_ptr<KeyStore>> KeyStore::Open(const std::string& dir, SecretBytes master_key) {
  if (master_key.size() != kKeyMaterialSize) {
    return Error::InvalidArgument("the master key must be 32 bytes");
  }
  CLOISTER_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  std::string path = dir + "/keys.db";
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                           nullptr);
  std::unique_ptr<sqlite3, SqliteCloser> db(raw);
  if (rc != SQLITE_OK) return Error::Io("cannot open " + path);
  chmod(path.c_str(), 0600);
  sqlite3_busy_timeout(db.get(), 5000);
  std::unique_ptr<KeyStore> store(new KeyStore(std::move(db), std::move(master_key)));
  CLOISTER_RETURN_IF_ERROR(store->Exec("PRAGMA journal_mode=WAL"));
  CLOISTER_RETURN_IF_ERROR(store->Exec("PRAGMA synchronous=FULL"));
  CLOISTER_RETURN_IF_ERROR(store->Migrate());
  return store;
}

Status KeyStore::Migrate() {
  std::lock_guard<std::mutex> lock(mu_);
  CLOISTER_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  auto step = [&]() -> Status {
    CLOISTER_ASSIGN_OR_RETURN(StmtPtr s, Prepare(db_.get(), "PRAGMA user_version"));
    if (sqlite3_step(s.get()) != SQLITE_ROW) return SqlError(db_.get(), "user_version");
    const int version = sqlite3_column_int(s.get(), 0);
    s.reset();
    if (version > kKeyStoreSchemaVersion) {
      return Error::Io("keys.db has schema version " + std::to_string(version) +
                       ", newer than this cloister-kms understands (" +
                       std::to_string(kKeyStoreSchemaVersion) + ")");
    }
    // Version 0: the original tables (created here for a new database; kept as they are).
    CLOISTER_RETURN_IF_ERROR(Exec(
        "CREATE TABLE IF NOT EXISTS keys (key_id TEXT PRIMARY KEY, account TEXT NOT NULL, "
        "region TEXT NOT NULL, description TEXT NOT NULL, state TEXT NOT NULL, "
        "policy TEXT NOT NULL, creation_ms INTEGER NOT NULL, deletion_ms INTEGER NOT NULL, "
        "material BLOB NOT NULL)"));
    CLOISTER_RETURN_IF_ERROR(Exec(
        "CREATE TABLE IF NOT EXISTS aliases (name TEXT NOT NULL, account TEXT NOT NULL, "
        "key_id TEXT NOT NULL, creation_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, "
        "PRIMARY KEY (account, name))"));
    if (version < 1) {
      CLOISTER_RETURN_IF_ERROR(Exec(
          "CREATE TABLE tags (key_id TEXT NOT NULL, tag_key TEXT NOT NULL, "
          "tag_value TEXT NOT NULL, PRIMARY KEY (key_id, tag_key))"));
    }
    return Exec("PRAGMA user_version = 1");
  }();
  if (!step) {
    (void)Exec("ROLLBACK");
    return step;
  }
  return Exec("COMMIT");
}

Status KeyStore::Exec(const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_.get(), sql, nullptr, nullptr, &err);
  std::string msg = err ? err : "";
  sqlite3_free(err);
  if (rc != SQLITE_OK) return Error::Io(std::string("sqlite: ") + msg);
  return OkStatus();
}

Result<std::vector<StoredKey>> KeyStore::LoadKeys() {
  std::lock_guard<std::mutex> lock(mu_);
  CLOISTER_ASSIGN_OR_RETURN(
      StmtPtr s, Prepare(db_.get(), "SELECT key_id, account, region, description, state, policy, "
                                    "creation_ms, deletion_ms, material FROM keys"));
  std::vector<StoredKey> out;
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    StoredKey k;
    k.row.key_id = ColumnText(s.get(), 0);
    k.row.account = ColumnText(s.get(), 1);
    k.row.region = ColumnText(s.get(), 2);
    k.row.description = ColumnText(s.get(), 3);
    k.row.state = ColumnText(s.get(), 4);
    k.row.policy = ColumnText(s.get(), 5);
    k.row.creation_ms = sqlite3_column_int64(s.get(), 6);
    k.row.deletion_ms = sqlite3_column_int64(s.get(), 7);
    const auto* blob = static_cast<const uint8_t*>(sqlite3_column_blob(s.get(), 8));
    ByteSpan sealed(blob, static_cast<size_t>(sqlite3_column_bytes(s.get(), 8)));
    auto material = AesGcmOpen(master_key_.reveal(), {}, sealed, MaterialAad(k.row.key_id));
    if (!material) {
      return Error::Internal("key " + k.row.key_id + " does not unseal under the master key");
    }
    CLOISTER_ASSIGN_OR_RETURN(k.material, SecretBytes::CopyOf(*material));
    out.push_back(std::move(k));
  }
  if (rc != SQLITE_DONE) return SqlError(db_.get(), "load keys");
  CLOISTER_ASSIGN_OR_RETURN(
      StmtPtr t, Prepare(db_.get(), "SELECT key_id, tag_key, tag_value FROM tags"));
  std::map<std::string, StoredKey*> by_id;
  for (StoredKey& k : out) by_id[k.row.key_id] = &k;
  while ((rc = sqlite3_step(t.get())) == SQLITE_ROW) {
    auto it = by_id.find(ColumnText(t.get(), 0));
    if (it != by_id.end()) it->second->row.tags[ColumnText(t.get(), 1)] = ColumnText(t.get(), 2);
  }
  if (rc != SQLITE_DONE) return SqlError(db_.get(), "load tags");
  return out;
}

Result<std::vector<AliasRow>> KeyStore::LoadAliases() {
  std::lock_guard<std::mutex> lock(mu_);
  CLOISTER_ASSIGN_OR_RETURN(
      StmtPtr s, Prepare(db_.get(), "SELECT name, account, key_id, creation_ms, updated_ms "
                                    "FROM aliases"));
  std::vector<AliasRow> out;
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    AliasRow a;
    a.name = ColumnText(s.get(), 0);
    a.account = ColumnText(s.get(), 1);
    a.key_id = ColumnText(s.get(), 2);
    a.creation_ms = sqlite3_column_int64(s.get(), 3);
    a.updated_ms = sqlite3_column_int64(s.get(), 4);
    out.push_back(std::move(a));
  }
  if (rc != SQLITE_DONE) return SqlError(db_.get(), "load aliases");
  return out;
}

Status KeyStore::InsertKey(const KeyRow& row, const SecretBytes& material) {
  CLOISTER_ASSIGN_OR_RETURN(Bytes sealed, AesGcmSeal(master_key_.reveal(), {}, material.reveal(),
                                                     MaterialAad(row.key_id)));
  std::lock_guard<std::mutex> lock(mu_);
  CLOISTER_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  auto st = [&]() -> Status {
    CLOISTER_ASSIGN_OR_RETURN(
        StmtPtr s,
        Prepare(db_.get(), "INSERT INTO keys VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"));
    BindText(s.get(), 1, row.key_id);
    BindText(s.get(), 2, row.account);
    BindText(s.get(), 3, row.region);
    BindText(s.get(), 4, row.description);
    BindText(s.get(), 5, row.state);
    BindText(s.get(), 6, row.policy);
    sqlite3_bind_int64(s.get(), 7, row.creation_ms);
    sqlite3_bind_int64(s.get(), 8, row.deletion_ms);
    sqlite3_bind_blob(s.get(), 9, sealed.data(), static_cast<int>(sealed.size()),
                      SQLITE_TRANSIENT);
    CLOISTER_RETURN_IF_ERROR(StepDone(db_.get(), s.get()));
    return InsertTagsLocked(row.key_id, row.tags);
  }();
  if (!st) {
    (void)Exec("ROLLBACK");
    return st;
  }
  return Exec("COMMIT");
}

Status KeyStore::InsertTagsLocked(const std::string& key_id,
                                  const std::map<std::string, std::string>& tags) {
  if (tags.empty()) return OkStatus();
  CLOISTER_ASSIGN_OR_RETURN(StmtPtr s,
                            Prepare(db_.get(), "INSERT INTO tags VALUES (?1, ?2, ?3)"));
  for (const auto& [k, v] : tags) {
    sqlite3_reset(s.get());
    BindText(s.get(), 1, key_id);
    BindText(s.get(), 2, k);
    BindText(s.get(), 3, v);
    CLOISTER_RETURN_IF_ERROR(StepDone(db_.get(), s.get()));
  }
  return OkStatus();
}

Status KeyStore::ReplaceTags(const std::string& key_id,
                             const std::map<std::string, std::string>& tags) {
  std::lock_guard<std::mutex> lock(mu_);
  CLOISTER_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  auto st = [&]() -> Status {
    CLOISTER_ASSIGN_OR_RETURN(StmtPtr s, Prepare(db_.get(), "DELETE FROM tags WHERE key_id = ?1"));
    BindText(s.get(), 1, key_id);
    CLOISTER_RETURN_IF_ERROR(StepDone(db_.get(), s.get()));
    return InsertTagsLocked(key_id, tags);
  }();
  if (!st) {
    (void)Exec("ROLLBACK");
    return st;
  }
  return Exec("COMMIT");
}

Status KeyStore::UpdateKey(const KeyRow& row) {
  std::lock_guard<std::mutex> lock(mu_);
  CLOISTER_ASSIGN_OR_RETURN(
      StmtPtr s, Prepare(db_.get(), "UPDATE keys SET state = ?2, policy = ?3, deletion_ms = ?4, "
                                    "description = ?5 WHERE key_id = ?1"));
  BindText(s.get(), 1, row.key_id);
  BindText(s.get(), 2, row.state);
  BindText(s.get(), 3, row.policy);
  sqlite3_bind_int64(s.get(), 4, row.deletion_ms);
  BindText(s.get(), 5, row.description);
  return StepDone(db_.get(), s.get());
}

Status KeyStore::InsertAlias(const AliasRow& row) {
  std::lock_guard<std::mutex> lock(mu_);
  CLOISTER_ASSIGN_OR_RETURN(StmtPtr s,
                            Prepare(db_.get(), "INSERT INTO aliases VALUES (?1, ?2, ?3, ?4, ?5)"));
  BindText(s.get(), 1, row.name);
  BindText(s.get(), 2, row.account);
  BindText(s.get(), 3, row.key_id);
  sqlite3_bind_int64(s.get(), 4, row.creation_ms);
  sqlite3_bind_int64(s.get(), 5, row.updated_ms);
  return StepDone(db_.get(), s.get());
}

Status KeyStore::DeleteAlias(const std::string& account, const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  CLOISTER_ASSIGN_OR_RETURN(
      StmtPtr s, Prepare(db_.get(), "DELETE FROM aliases WHERE account = ?1 AND name = ?2"));
  BindText(s.get(), 1, account);
  BindText(s.get(), 2, name);
  return StepDone(db_.get(), s.get());
}

Status KeyStore::DeleteKey(const std::string& key_id) {
  std::lock_guard<std::mutex> lock(mu_);
  CLOISTER_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  for (const char* sql : {"DELETE FROM aliases WHERE key_id = ?1",
                          "DELETE FROM tags WHERE key_id = ?1",
                          "DELETE FROM keys WHERE key_id = ?1"}) {
    auto s = Prepare(db_.get(), sql);
    if (!s) {
      (void)Exec("ROLLBACK");
      return s.error();
    }
    BindText(s->get(), 1, key_id);
    if (auto st = StepDone(db_.get(), s->get()); !st) {
      (void)Exec("ROLLBACK");
      return st;
    }
  }
  return Exec("COMMIT");
}

Result<SecretBytes> LoadOrCreateMasterKey(const std::string& dir, int fd) {
  if (fd >= 0) {
    CLOISTER_ASSIGN_OR_RETURN(SecretBytes key, SecretBytes::Create(kKeyMaterialSize));
    if (!ReadExact(fd, key.reveal_mutable())) {
      return Error::InvalidArgument("--master-key-fd must supply 32 bytes");
    }
    close(fd);
    return key;
  }
  CLOISTER_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  std::string path = dir + "/master.key";
  struct stat st {};
  if (stat(path.c_str(), &st) == 0) {
    if ((st.st_mode & 077) != 0) {
      // Not a usage error: the file is there, and whoever could read it holds every key.
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
      return Error::PolicyDenied(path + " has mode " + mode +
                                 ": group or others can read or write the master key, which "
                                 "protects every key; refusing to start: chmod 600 " + path +
                                 " (and consider the keys exposed if others could read it)");
    }
    CLOISTER_ASSIGN_OR_RETURN(Bytes raw, ReadFile(path, 64));
    if (raw.size() != kKeyMaterialSize) {
      sodium_memzero(raw.data(), raw.size());
      return Error::Malformed(path + " must hold 32 bytes");
    }
    auto key = SecretBytes::CopyOf(raw);
    sodium_memzero(raw.data(), raw.size());
    return key;
  }
  CLOISTER_ASSIGN_OR_RETURN(SecretBytes key, SecretBytes::Random(kKeyMaterialSize));
  CLOISTER_RETURN_IF_ERROR(WriteFileAtomic(path, key.reveal(), 0600));
  return key;
}

}  // namespace cloister::kms
