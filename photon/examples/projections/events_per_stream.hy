;; How many events each stream holds (internal streams such as __config__ included).
(setv projection-name "events-per-stream"
      stream-name "__all__"
      initial-value {})

(defn reduction [state event]
  (setv stream (get event "stream-name"))
  (setv (get state stream) (+ (.get state stream 0) 1))
  state)
