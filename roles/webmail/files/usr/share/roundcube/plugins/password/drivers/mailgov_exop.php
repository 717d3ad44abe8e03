<?php

/**
 * mailgov: Roundcube's ldap_exop driver (RFC 3062 Password Modify as the person, roles/webmail)
 * with the directory's reason passed on. The stock driver answers every refusal with one
 * "constraint violation" text; slapd's ppolicy and the check module (mailgov_pwcheck) say which
 * rule refused the password, and that is what the person needs to read. Nothing is decided
 * here: the directory is the one judge (WEB-07).
 */

require_once __DIR__ . '/ldap_exop.php';

class rcube_mailgov_exop_password extends rcube_ldap_exop_password
{
    // The check module's own texts name the rule (first match wins) ...
    const REASONS = [
        'account name' => 'account_name',
        "owner's name" => 'owner_name',
        'too short'    => 'too_short',
        'history'      => 'in_history',
    ];

    // ... else the ppolicy response control's error (draft-behera-ldap-password-policy).
    const PPOLICY = [5 => 'quality', 6 => 'too_short', 7 => 'too_young', 8 => 'in_history'];

    const TEXTS = [
        'vi' => [
            'account_name' => 'Mật khẩu mới không được chứa tên tài khoản.',
            'owner_name'   => 'Mật khẩu mới không được chứa họ tên của chủ tài khoản.',
            'too_short'    => 'Mật khẩu mới quá ngắn so với quy định.',
            'in_history'   => 'Mật khẩu mới trùng với một mật khẩu đã dùng gần đây.',
            'too_young'    => 'Mật khẩu vừa được đổi gần đây; vui lòng thử lại sau.',
            'quality'      => 'Mật khẩu mới không đạt yêu cầu về độ phức tạp (các loại ký tự bắt buộc).',
        ],
        'en' => [
            'account_name' => 'The new password must not contain the account name.',
            'owner_name'   => "The new password must not contain the owner's name.",
            'too_short'    => 'The new password is shorter than the policy allows.',
            'in_history'   => 'The new password was used recently.',
            'too_young'    => 'The password was changed too recently; try again later.',
            'quality'      => 'The new password does not meet the complexity rules (required kinds of characters).',
        ],
    ];

    public function save($curpass, $passwd, $username)
    {
        $this->username = $username;  // the bind DN's %name (ldap_simple's substitute_vars)
        $ret = $this->connect($curpass);
        if ($ret !== true) {
            return $ret;
        }
        // Ask for the ppolicy response control: its error code says which rule refused.
        ldap_set_option($this->conn, LDAP_OPT_SERVER_CONTROLS,
            [['oid' => LDAP_CONTROL_PASSWORDPOLICYREQUEST]]);
        $controls = [];
        if (ldap_exop_passwd($this->conn, $this->user, $curpass, $passwd, $controls)) {
            ldap_unbind($this->conn);
            return PASSWORD_SUCCESS;
        }
        $errno = ldap_errno($this->conn);
        $said = '';
        ldap_get_option($this->conn, LDAP_OPT_DIAGNOSTIC_MESSAGE, $said);
        ldap_unbind($this->conn);
        $error = $controls[LDAP_CONTROL_PASSWORDPOLICYRESPONSE]['value']['error'] ?? null;
        // One line per refusal, no password in it: what the directory said.
        rcube::write_log('password', sprintf('Password change refused for %s: result %d, ppolicy %s, "%s"',
            $username, $errno, $error === null ? '-' : (string) $error, (string) $said));
        // 0x13 constraintViolation (ppolicy, the check module), 0x35 unwillingToPerform; PHP
        // may leave the number at 0 once it parsed the result's controls: the control decides.
        if ($error === null && $errno != 0x13 && $errno != 0x35) {
            return PASSWORD_CONNECT_ERROR;
        }
        $lang = strpos((string) rcmail::get_instance()->get_user_language(), 'vi') === 0 ? 'vi' : 'en';
        $lower = strtolower((string) $said);
        $key = null;
        foreach (self::REASONS as $needle => $name) {
            if (strpos($lower, $needle) !== false) {
                $key = $name;
                break;
            }
        }
        if ($key === null && $error !== null && isset(self::PPOLICY[$error])) {
            $key = self::PPOLICY[$error];
        }
        if ($key !== null) {
            return ['code' => PASSWORD_CONSTRAINT_VIOLATION, 'message' => self::TEXTS[$lang][$key]];
        }
        return ['code' => PASSWORD_CONSTRAINT_VIOLATION, 'message' => (string) $said];
    }
}
