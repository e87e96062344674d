// The model files the user opened from disk, kept in this browser's IndexedDB so that a reload
// opens them again without asking for them (or reading them: IndexedDB stores the File objects
// themselves, as blobs on disk). One model is kept at a time; nothing leaves the machine.
const DATABASE = 'glassbox';
const STORE = 'opened-model';
const KEY = 'files';

function database() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DATABASE, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function transaction(mode, work) {
  const db = await database();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const request = work(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(request.result);
      tx.onerror = () => reject(request.error ?? tx.error);
      tx.onabort = () => reject(tx.error ?? new Error('the browser refused to store the files'));
    });
  } finally {
    db.close();
  }
}

/** Keeps `entries` (`[{ file, path }]`) in place of any model kept before. */
export function keepFiles(entries) {
  return transaction('readwrite', (store) => store.put(entries, KEY));
}

/** The entries kept, or `undefined`. */
export function keptFiles() {
  return transaction('readonly', (store) => store.get(KEY));
}

/** Forgets the kept model. */
export function forgetFiles() {
  return transaction('readwrite', (store) => store.delete(KEY));
}
