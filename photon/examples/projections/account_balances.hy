;; Account balances from the "accounts" stream: "deposited" adds, "withdrawn" subtracts.
;; Payloads look like {"account": "alice", "amount": 25}.
{:projection-name "account-balances"
 :stream-name "accounts"
 :event-types ["deposited" "withdrawn"]
 :initial-value {}
 :reduction
 (fn [state event]
   (setv payload (get event "payload"))
   ;; a redacted event (photon redact) holds only the marker {"redacted": true, ...}: skip it
   (when (.get payload "redacted")
     (return state))
   (setv account (get payload "account")
         amount (get payload "amount")
         sign (if (= (get event "event-type") "deposited") 1 -1))
   (setv (get state account) (+ (.get state account 0) (* sign amount)))
   state)}
